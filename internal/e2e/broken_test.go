package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/testutil"
)

// TestBrokenReplicas damages a replica written by the real engine in each
// way a disk or a person can, and checks that restore refuses naming the
// file and leaves no output, while a -timestamp before the damage still
// restores exactly.
func TestBrokenReplicas(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", replica))
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "200")
	w.Wait(time.Minute)
	time.Sleep(1500 * time.Millisecond)
	ts := time.Now()
	time.Sleep(1100 * time.Millisecond)
	w = Start(t, bin.Writer, "-db", dbPath, "-n", "300", "-every", "5ms")
	w.Wait(time.Minute)
	time.Sleep(500 * time.Millisecond)
	stopReplicate(t, rep)
	requireLive(t, dbPath, 500)

	walDir := filepath.Join(replica, "generations", onlyGeneration(t, replica), "wal")
	late := segmentsAfter(t, walDir, ts)
	if len(late) < 3 {
		t.Fatalf("only %d segments after the timestamp", len(late))
	}
	cases := []struct {
		name   string
		damage func(dir string) string // returns what the error must name
	}{
		{"flipped byte", func(d string) string {
			p := filepath.Join(d, late[1])
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0x10
			os.WriteFile(p, b, 0o644)
			return late[1]
		}},
		{"truncated segment", func(d string) string {
			p := filepath.Join(d, late[1])
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)*2/3], 0o644)
			return late[1]
		}},
		{"missing middle segment", func(d string) string {
			os.Remove(filepath.Join(d, late[1]))
			return "missing"
		}},
	}
	tried := 0
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			copyReplica := filepath.Join(t.TempDir(), "replica")
			testutil.CopyTree(t, replica, copyReplica)
			want := tc.damage(filepath.Join(copyReplica, strings.TrimPrefix(walDir, replica)))
			out := filepath.Join(t.TempDir(), "out.db")
			_, stderr, code := Run(context.Background(), bin.Litestream, "restore", "-o", out, copyReplica)
			if code != 1 || !strings.Contains(stderr, want) {
				t.Fatalf("restore of a damaged replica: exit %d, stderr %q (want it to name %q)", code, stderr, want)
			}
			if ents, _ := os.ReadDir(filepath.Dir(out)); len(ents) != 0 {
				t.Fatalf("failed restore left %d files", len(ents))
			}
			restoreAndVerify(t, 200, "-timestamp", ts.UTC().Format(time.RFC3339Nano), copyReplica)
			tried++
		})
	}

	t.Run("missing snapshot", func(t *testing.T) {
		copyReplica := filepath.Join(t.TempDir(), "replica")
		testutil.CopyTree(t, replica, copyReplica)
		snaps := filepath.Join(copyReplica, strings.TrimPrefix(filepath.Dir(walDir), replica), "snapshots")
		os.RemoveAll(snaps)
		_, stderr, code := Run(context.Background(), bin.Litestream, "restore", "-o", filepath.Join(t.TempDir(), "o.db"), copyReplica)
		if code != 1 || !strings.Contains(stderr, "snapshot") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		tried++
	})
	t.Run("junk names", func(t *testing.T) {
		copyReplica := filepath.Join(t.TempDir(), "replica")
		testutil.CopyTree(t, replica, copyReplica)
		wd := filepath.Join(copyReplica, strings.TrimPrefix(walDir, replica))
		for _, p := range []string{filepath.Join(copyReplica, "generations", "junk"), filepath.Join(copyReplica, "generations", "0123"), filepath.Join(wd, "notes.txt"),
			filepath.Join(wd, "00000000_0000.wal.lz4"), filepath.Join(wd, "ZZZZZZZZ_00000000.wal.lz4"), filepath.Join(filepath.Dir(wd), "snapshots", "latest.snapshot.lz4")} {
			os.WriteFile(p, []byte("junk"), 0o644)
		}
		restoreAndVerify(t, 500, copyReplica)
		tried++
	})
	t.Run("two engines on one replica", func(t *testing.T) {
		shared := filepath.Join(t.TempDir(), "shared")
		a, b := filepath.Join(t.TempDir(), "a.db"), filepath.Join(t.TempDir(), "b.db")
		ra := Start(t, bin.Litestream, "replicate", a, shared)
		rb := Start(t, bin.Litestream, "replicate", b, shared)
		wa := Start(t, bin.Writer, "-db", a, "-n", "150")
		wb := Start(t, bin.Writer, "-db", b, "-n", "250")
		wa.Wait(time.Minute)
		wb.Wait(time.Minute)
		time.Sleep(1500 * time.Millisecond)
		ra.Signal(syscall.SIGINT)
		rb.Signal(syscall.SIGINT)
		ra.Wait(time.Minute)
		rb.Wait(time.Minute)
		stdout, _, _ := Run(context.Background(), bin.Litestream, "generations", shared)
		var counts []int
		for _, line := range strings.Split(strings.TrimSpace(stdout), "\n")[1:] {
			gen := strings.Fields(line)[1]
			counts = append(counts, restoreAndVerifyAtLeast(t, "-generation", gen, shared))
		}
		sort.Ints(counts)
		if fmt.Sprint(counts) != "[150 250]" {
			t.Fatalf("generations restore to %v transactions, want one of 150 and one of 250", counts)
		}
		requireLive(t, a, 150)
		requireLive(t, b, 250)
		tried++
	})
	figure(t, "broken-replica cases tried", tried)
}

func onlyGeneration(t *testing.T, replica string) string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(replica, "generations"))
	if err != nil || len(ents) != 1 {
		t.Fatalf("want one generation: %v %v", ents, err)
	}
	return ents[0].Name()
}

// segmentsAfter lists the segment files modified after ts, in name order.
func segmentsAfter(t *testing.T, dir string, ts time.Time) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		fi, _ := e.Info()
		if fi.ModTime().After(ts) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}
