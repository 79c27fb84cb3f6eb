package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
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

// TestMetricsTextMatchesCollector: what /metrics writes (writeText) parses
// as the text format and holds exactly the samples the collector's
// registry path gives, labels, types and values included.
func TestMetricsTextMatchesCollector(t *testing.T) {
	dir := t.TempDir()
	var dbs []*litestream.DB
	for _, name := range []string{"a.db", `we"ird\name.db`} {
		db := litestream.NewDB(filepath.Join(dir, name))
		db.AddReplica(litestream.NewReplica("file", file.NewReplicaClient(filepath.Join(dir, "replica-"+name))))
		dbs = append(dbs, db)
	}
	ops := &litestream.OpCounter{}
	ops.Hook("file")("PUT", 10)
	c := newMetricsCollector(newDBSet(dbs...), ops)
	var text bytes.Buffer
	if err := c.writeText(&text); err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	parsed, err := p.TextToMetricFamilies(bytes.NewReader(text.Bytes()))
	if err != nil {
		t.Fatalf("writeText's output does not parse: %v\n%s", err, text.String())
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	want, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(parsed) != len(want) {
		t.Errorf("writeText wrote %d families, the registry %d", len(parsed), len(want))
	}
	for _, mf := range want {
		got, ok := parsed[mf.GetName()]
		if !ok {
			t.Errorf("writeText lacks %s", mf.GetName())
			continue
		}
		var a, b bytes.Buffer
		for _, m := range got.Metric { // label order carries no meaning
			slices.SortFunc(m.Label, func(x, y *dto.LabelPair) int { return strings.Compare(x.GetName(), y.GetName()) })
		}
		slices.SortFunc(got.Metric, func(x, y *dto.Metric) int { return strings.Compare(x.String(), y.String()) })
		slices.SortFunc(mf.Metric, func(x, y *dto.Metric) int { return strings.Compare(x.String(), y.String()) })
		a.Reset()
		expfmt.MetricFamilyToText(&a, mf)
		expfmt.MetricFamilyToText(&b, got)
		if a.String() != b.String() {
			t.Errorf("%s differs:\nregistry:\n%s\nwriteText:\n%s", mf.GetName(), a.String(), b.String())
		}
	}
}
