// Command bench measures what users choose a replication tool on: write
// overhead, replication lag, restore speed, resources and request cost,
// each against a baseline measured in the same run. It prints a table and
// writes a JSON report. Run it with `make bench` (or `make bench-quick`).
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	_ "modernc.org/sqlite"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/s3test"
)

// Figure is one measurement, with its baseline and target.
type Figure struct {
	Section  string  `json:"section"`
	Name     string  `json:"name"`
	Value    float64 `json:"value"`
	Unit     string  `json:"unit"`
	Baseline float64 `json:"baseline,omitempty"`
	BaseName string  `json:"baseline_name,omitempty"`
	Ratio    float64 `json:"ratio,omitempty"`
	Target   string  `json:"target,omitempty"`
	Met      *bool   `json:"met,omitempty"`
}

// Report is the whole run.
type Report struct {
	Date    string   `json:"date"`
	Cores   int      `json:"cores"`
	MemGiB  float64  `json:"mem_gib"`
	Go      string   `json:"go"`
	SQLite  string   `json:"sqlite"`
	Quick   bool     `json:"quick"`
	Figures []Figure `json:"figures"`
}

// bench holds the run's environment.
type bench struct {
	quick      bool
	dir        string
	litestream string
	writer     string
	s3         *s3test.Process
	bucket     string
	report     Report

	keep       string                    // -keep: the restore section's directory, reused across runs
	rounds     int                       // -rounds: restore rounds, when not 0
	cpuprofile string                    // -cpuprofile: profile of the file replica's restores
	check      litestream.IntegrityCheck // -integrity-check of the timed restores
}

func main() {
	if helper := helperMain(os.Args[1:]); helper != nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		err := helper(ctx)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	out := flag.String("o", "bench.json", "JSON report path")
	quick := flag.Bool("quick", false, "small sizes, for a fast check (figures are not representative)")
	only := flag.String("only", "", "comma-separated sections to run (overhead,lag,restore,resources,cost,many)")
	keep := flag.String("keep", "", "restore section: build its database and file replica in this directory once, and reuse them")
	rounds := flag.Int("rounds", 0, "restore section: rounds of cp and restores (default 5)")
	cpuprofile := flag.String("cpuprofile", "", "restore section: write a CPU profile of the file replica's restores here")
	check := flag.String("integrity-check", "quick", "restore section: the timed restores' check (none, quick, full)")
	flag.Parse()
	ic, err := litestream.ParseIntegrityCheck(*check)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	opts := &bench{keep: *keep, rounds: *rounds, cpuprofile: *cpuprofile, check: ic}
	if err := run(*out, *quick, *only, opts); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// helperMain returns the helper process (selfProc) that args name, or nil
// when they name none.
func helperMain(args []string) func(context.Context) error {
	switch {
	case len(args) == 3 && args[0] == bareCopyCmd:
		return func(ctx context.Context) error { return runBareCopy(ctx, args[1], args[2]) }
	case len(args) == 2 && args[0] == spinCmd:
		return func(ctx context.Context) error {
			frac, err := strconv.ParseFloat(args[1], 64)
			if err != nil {
				return fmt.Errorf("spin: %w", err)
			}
			return runSpin(ctx, frac)
		}
	}
	return nil
}

func run(out string, quick bool, only string, opts *bench) error {
	dir, err := os.MkdirTemp("", "litestream-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b := opts
	b.quick, b.dir, b.bucket = quick, dir, "bench"
	b.report = Report{Date: time.Now().UTC().Format(time.RFC3339), Cores: runtime.NumCPU(), MemGiB: memGiB(), Go: runtime.Version(), SQLite: sqliteVersion(), Quick: quick}
	if err := b.build(); err != nil {
		return err
	}
	if b.s3, err = s3test.Launch(filepath.Join(dir, "s3"), b.bucket); err != nil {
		return err
	}
	defer b.s3.Stop()
	sections := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"overhead", b.overhead}, {"lag", b.lag}, {"restore", b.restore}, {"resources", b.resources}, {"cost", b.cost}, {"many", b.many},
	}
	ctx := context.Background()
	for _, s := range sections {
		if only != "" && !strings.Contains(","+only+",", ","+s.name+",") {
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", s.name)
		if err := s.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	b.print()
	data, _ := json.MarshalIndent(b.report, "", "  ")
	if err := os.WriteFile(out, data, 0o644); err != nil {
		return err
	}
	fmt.Printf("\nJSON report: %s\n", out)
	return nil
}

// add records a figure; ratio and target checks are computed by the caller.
func (b *bench) add(f Figure) {
	b.report.Figures = append(b.report.Figures, f)
	fmt.Fprintf(os.Stderr, "   %s: %.3g %s\n", f.Name, f.Value, f.Unit)
}

func met(ok bool) *bool { return &ok }

func (b *bench) print() {
	r := b.report
	fmt.Printf("\nlitestream benchmark, %s: %d cores, %.0f GiB, %s, SQLite %s%s\n\n", r.Date, r.Cores, r.MemGiB, r.Go, r.SQLite, map[bool]string{true: " (quick: sizes too small to be representative)"}[r.Quick])
	tw := tabwriter.NewWriter(os.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "section\tfigure\tvalue\tbaseline\tratio\ttarget\t")
	for _, f := range r.Figures {
		base, ratio := "", ""
		if f.BaseName != "" {
			base = fmt.Sprintf("%.4g (%s)", f.Baseline, f.BaseName)
		}
		if f.Ratio != 0 {
			ratio = fmt.Sprintf("%.3f", f.Ratio)
		}
		mark := ""
		if f.Met != nil && !*f.Met {
			mark = "  <-- MISSED"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.4g %s\t%s\t%s\t%s%s\t\n", f.Section, f.Name, f.Value, f.Unit, base, ratio, f.Target, mark)
	}
	tw.Flush()
}

// build compiles the binaries under test.
func (b *bench) build() error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	b.litestream, b.writer = filepath.Join(b.dir, "litestream"), filepath.Join(b.dir, "sqlwriter")
	for out, pkg := range map[string]string{b.litestream: "./cmd/litestream", b.writer: "./internal/cmd/sqlwriter"} {
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if o, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build %s: %v: %s", pkg, err, o)
		}
	}
	return nil
}

func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

func memGiB() float64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	var kb float64
	fmt.Sscanf(strings.TrimPrefix(strings.SplitN(string(b), "\n", 2)[0], "MemTotal:"), "%f", &kb)
	return kb / (1 << 20)
}

func sqliteVersion() string {
	db, err := sql.Open("sqlite", ":memory:")
	if err != nil {
		return "?"
	}
	defer db.Close()
	var v string
	db.QueryRow("SELECT sqlite_version()").Scan(&v)
	return v
}
