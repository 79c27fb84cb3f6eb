package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/litestream-go/litestream"
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

// TestMetricsTotals: the totals count the databases in the set at the
// scrape, and a database not opened yet counts as without generation.
func TestMetricsTotals(t *testing.T) {
	dir := t.TempDir()
	set := newDBSet(litestream.NewDB(filepath.Join(dir, "a.db")), litestream.NewDB(filepath.Join(dir, "b.db")))
	reg := prometheus.NewRegistry()
	reg.MustRegister(newMetricsCollector(set, &litestream.OpCounter{}))
	got := func(name string) float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == name {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatalf("no %s", name)
		return 0
	}
	if n := got("litestream_databases"); n != 2 {
		t.Errorf("litestream_databases = %v, want 2", n)
	}
	if n := got("litestream_databases_without_generation"); n != 2 {
		t.Errorf("litestream_databases_without_generation = %v, want 2", n)
	}
	set.add(litestream.NewDB(filepath.Join(dir, "c.db")))
	if n := got("litestream_databases"); n != 3 {
		t.Errorf("after an add, litestream_databases = %v, want 3", n)
	}
	if n := got("litestream_replica_lag_max_seconds"); n != 0 {
		t.Errorf("litestream_replica_lag_max_seconds = %v with no replica, want 0", n)
	}
}
