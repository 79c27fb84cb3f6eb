package litestream_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// remoteClient is a directory replica that reports itself as object
// storage, to stand for one in the planner's eyes.
type remoteClient struct{ *file.ReplicaClient }

func (remoteClient) Type() string { return "s3" }

// twoReplicas opens the test writer and a DB with a replica per client
// kind ("local" is a directory, "remote" stands for object storage), in
// that order, with every sync and checkpoint run by the test.
func twoReplicas(t *testing.T) (w *sqlwriter.Writer, db *litestream.DB, local, remote *litestream.Replica) {
	t.Helper()
	w, path, dir := openWriter(t, 0)
	db = litestream.NewDB(path)
	db.Logger = testLogger(t)
	litestream.CheckInvariantsOnClose(t, db)
	db.CheckpointInterval, db.MinCheckpointPageN = 0, 0
	local = litestream.NewReplica("local", file.NewReplicaClient(filepath.Join(dir, "local")))
	remote = litestream.NewReplica("remote", remoteClient{file.NewReplicaClient(filepath.Join(dir, "remote"))})
	db.AddReplica(local)
	db.AddReplica(remote)
	t.Cleanup(func() { db.Close(context.Background()) })
	return w, db, local, remote
}

// syncReplicas copies the WAL into the shadow WAL, then ships it to each
// of rs.
func syncReplicas(t *testing.T, db *litestream.DB, rs ...*litestream.Replica) {
	t.Helper()
	ctx := context.Background()
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// planAndRestore plans over rs, requires the plan's replica to be want and
// its Choice to hold every one of why (to be empty without why), then
// restores it and returns the transactions the result holds.
func planAndRestore(t *testing.T, rs []*litestream.Replica, opt litestream.RestoreOptions, want string, why ...string) int {
	t.Helper()
	ctx := context.Background()
	plan, err := litestream.PlanRestore(ctx, rs, opt)
	if err != nil {
		t.Fatal(err)
	}
	if plan.Replica.Name != want {
		t.Fatalf("chose %s, want %s: %s", plan.Replica.Name, want, plan)
	}
	for _, w := range why {
		if !strings.Contains(plan.Choice, w) {
			t.Errorf("choice %q does not say %q", plan.Choice, w)
		}
	}
	if len(why) == 0 && plan.Choice != "" {
		t.Errorf("a plan of one replica says why it was chosen: %s", plan)
	}
	if len(why) > 0 && !strings.Contains(plan.String(), "; chose "+plan.Choice) {
		t.Errorf("plan line does not carry the choice: %s", plan)
	}
	out := filepath.Join(t.TempDir(), "restored.db")
	if err := litestream.Restore(ctx, plan, out, opt); err != nil {
		t.Fatalf("restore %s: %v", plan, err)
	}
	m, err := sqlwriter.Verify(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestPlanRestore_SamePositionPrefersLocal: two replicas synced together
// hold the same segments; the directory wins over object storage in either
// order, and -replica still pins the other.
func TestPlanRestore_SamePositionPrefersLocal(t *testing.T) {
	w, db, local, remote := twoReplicas(t)
	for i := 0; i < 3; i++ {
		commitRows(t, w, 20)
		syncReplicas(t, db, local, remote)
	}
	for _, rs := range [][]*litestream.Replica{{local, remote}, {remote, local}} {
		if m := planAndRestore(t, rs, latest(), "local", "local (file, ", "over remote (s3, ", ": same position, local directory"); m != w.LastTx() {
			t.Fatalf("restored %d transactions, committed %d", m, w.LastTx())
		}
	}
	opt := latest()
	opt.ReplicaName = "remote"
	if m := planAndRestore(t, []*litestream.Replica{local, remote}, opt, "remote"); m != w.LastTx() {
		t.Fatalf("restored %d transactions, committed %d", m, w.LastTx())
	}
}

// TestPlanRestore_SamePositionFewerBytes: one directory replica synced
// after every commit, the other once at the end, reach the same position
// through different segments; the one with fewer stored bytes wins, though
// its last segment starts earlier.
func TestPlanRestore_SamePositionFewerBytes(t *testing.T) {
	w, path, dir := openWriter(t, 0)
	db := litestream.NewDB(path)
	db.Logger = testLogger(t)
	litestream.CheckInvariantsOnClose(t, db)
	db.CheckpointInterval, db.MinCheckpointPageN = 0, 0
	often := litestream.NewReplica("often", file.NewReplicaClient(filepath.Join(dir, "often")))
	once := litestream.NewReplica("once", file.NewReplicaClient(filepath.Join(dir, "once")))
	db.AddReplica(often)
	db.AddReplica(once)
	t.Cleanup(func() { db.Close(context.Background()) })

	commitRows(t, w, 1)
	syncReplicas(t, db, often, once) // both take their snapshot here
	for i := 0; i < 10; i++ {
		commitRows(t, w, 1)
		syncReplicas(t, db, often)
	}
	syncReplicas(t, db, once)
	if often.Pos() != once.Pos() {
		t.Fatalf("positions differ: %s and %s", often.Pos(), once.Pos())
	}
	ctx := context.Background()
	oftenPlan, err := litestream.PlanRestore(ctx, []*litestream.Replica{often}, latest())
	if err != nil {
		t.Fatal(err)
	}
	oncePlan, err := litestream.PlanRestore(ctx, []*litestream.Replica{once}, latest())
	if err != nil {
		t.Fatal(err)
	}
	if !oncePlan.Target.Less(oftenPlan.Target) || oncePlan.Size() >= oftenPlan.Size() {
		t.Fatalf("the test needs once's last segment to start earlier and its plan to be smaller: %s; %s", oncePlan, oftenPlan)
	}
	if m := planAndRestore(t, []*litestream.Replica{often, once}, latest(), "once", "over often (file, ", ": same position, fewer stored bytes"); m != w.LastTx() {
		t.Fatalf("restored %d transactions, committed %d", m, w.LastTx())
	}
}

// TestPlanRestore_FurthestWins: a replica that holds more commits wins
// whatever it costs, within an index and across one, and with -index the
// replicas compare as far as that index.
func TestPlanRestore_FurthestWins(t *testing.T) {
	ctx := context.Background()
	w, db, local, remote := twoReplicas(t)
	commitRows(t, w, 20)
	syncReplicas(t, db, local, remote)
	commitRows(t, w, 20)
	syncReplicas(t, db, remote) // the local one is behind in the same index
	if m := planAndRestore(t, []*litestream.Replica{local, remote}, latest(), "remote", "remote (s3, ", "over local (file, ", ": reaches further ("); m != w.LastTx() {
		t.Fatalf("restored %d transactions, committed %d", m, w.LastTx())
	}

	first := remote.Pos().Index
	if err := db.Checkpoint(ctx, false); err != nil {
		t.Fatal(err)
	}
	syncReplicas(t, db, local, remote)
	commitRows(t, w, 5)
	syncReplicas(t, db, local) // now the remote one is behind, by an index
	if local.Pos().Index == first {
		t.Fatalf("no new index after the checkpoint: %s", local.Pos())
	}
	if m := planAndRestore(t, []*litestream.Replica{remote, local}, latest(), "local", ": reaches further ("); m != w.LastTx() {
		t.Fatalf("restored %d transactions, committed %d", m, w.LastTx())
	}

	// Both hold the whole first index: as far, so the directory wins.
	opt := latest()
	opt.Index = first
	planAndRestore(t, []*litestream.Replica{remote, local}, opt, "local", ": same position, local directory")
}
