package main

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsDoc keeps docs/metrics.md and the collector in step, labels
// included.
func TestMetricsDoc(t *testing.T) {
	doc, err := os.ReadFile("../../docs/metrics.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string][]string{} // name -> labels
	row := regexp.MustCompile("^\\| `(litestream_[a-z_]+)` \\| [a-z]+ \\| ([^|]*) \\|")
	for _, line := range strings.Split(string(doc), "\n") {
		if m := row.FindStringSubmatch(line); m != nil {
			var labels []string
			for _, l := range strings.Split(m[2], ",") {
				labels = append(labels, strings.Trim(strings.TrimSpace(l), "`"))
			}
			slices.Sort(labels)
			documented[m[1]] = labels
		}
	}
	ch := make(chan *prometheus.Desc, 100)
	newMetricsCollector(nil, nil).Describe(ch)
	close(ch)
	desc := regexp.MustCompile(`fqName: "([^"]+)".*variableLabels: \{([^}]*)\}`)
	exported := map[string]bool{}
	for d := range ch {
		m := desc.FindStringSubmatch(d.String())
		if m == nil {
			t.Fatalf("cannot read %s", d)
		}
		exported[m[1]] = true
		labels := strings.Split(m[2], ",")
		slices.Sort(labels)
		got, ok := documented[m[1]]
		switch {
		case !ok:
			t.Errorf("docs/metrics.md does not list %s", m[1])
		case !slices.Equal(got, labels):
			t.Errorf("docs/metrics.md gives %s the labels %v; it has %v", m[1], got, labels)
		}
	}
	for name := range documented {
		if !exported[name] {
			t.Errorf("docs/metrics.md lists %s, which the collector does not export", name)
		}
	}
}
