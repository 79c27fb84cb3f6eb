// Package gcs is the replica client for Google Cloud Storage, in the
// layout of Litestream v0.3 under an object name prefix.
//
// Invariants of the client (every method keeps them):
//  1. An object appears whole or not at all: storage's Writer makes the
//     object only when Close succeeds, and a write that fails cancels the
//     writer's context before closing it, so nothing is committed (upload).
//  2. Memory does not grow with object size: an upload holds at most
//     ChunkSize bytes (the writer's chunk buffer) plus one staging buffer
//     of smallObject bytes; a download streams (upload, get.go).
//  3. Times are the store's: CreatedAt is an object's creation time as GCS
//     records it, from listings and from the writer's final attributes.
//  4. Requests are retried with backoff and a bound (retry options set in
//     Init, RetryAlways since every write goes to a fixed name; an upload's
//     attempts by attemptBound, as the library bounds them only by the
//     context); a download cut short resumes at the offset reached, at
//     most storeclient.MaxResumes times (get.go).
//  5. No request is sent unless a method is called: nothing polls, and
//     Init only builds the client.
//  6. STORAGE_EMULATOR_HOST, when set, is left to the storage library to
//     honour: the client passes no endpoint and no credentials of its own,
//     so with the variable set no credentials are needed.
//  7. Every method refuses a generation or position that
//     litestream.ValidateGeneration or Pos.Validate rejects before it
//     builds an object name.
//
// Interrupted uploads leave nothing to remove: a resumable upload that is
// never finished is no object, no listing shows it, and GCS discards it
// after a week. The client is therefore no litestream.LeftoverRemover.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

// ChunkSize is the upload chunk of an object larger than smallObject: an
// upload holds one chunk in memory at a time, whatever the object's size.
const ChunkSize = 8 << 20

// smallObject is the size up to which an object is read whole before the
// upload begins, so that its writer's buffer is sized to it (rounded up to
// 256 KiB by the library) and not to ChunkSize: most segments are small.
const smallObject = 1 << 20

// deleteWorkers bounds the deletes in flight: GCS deletes one object a
// request.
const deleteWorkers = 16

// ReplicaClient stores a replica in a GCS bucket under an object name
// prefix. Its zero value with Bucket set is ready to use.
type ReplicaClient struct {
	Bucket      string
	Path        string // object name prefix; a leading slash is part of the names, as in v0.3
	MaxAttempts int    // per request, with backoff (default 10)

	// OnOp, if set, is called after each request with "GET", "PUT",
	// "LIST" or "DELETE" and the stored bytes moved.
	OnOp func(op string, bytes int64)

	mu     sync.Mutex
	client *storage.Client
	bkt    *storage.BucketHandle

	// staging recycles the buffers an upload reads its start into.
	staging sync.Pool
}

var (
	_ litestream.ReplicaClient = (*ReplicaClient)(nil)
	_ litestream.StoreChecker  = (*ReplicaClient)(nil)
)

// Type returns "gcs".
func (c *ReplicaClient) Type() string { return "gcs" }

func (c *ReplicaClient) op(op string, n int64) {
	if c.OnOp != nil {
		c.OnOp(op, n)
	}
}

// Init builds the storage client on first use, from the standard Google
// credential chain, or for the emulator STORAGE_EMULATOR_HOST names. It
// sends no request.
func (c *ReplicaClient) Init(ctx context.Context) (*storage.BucketHandle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bkt != nil {
		return c.bkt, nil
	}
	if c.Bucket == "" {
		return nil, errors.New("gcs replica has no bucket: use gcs://BUCKET/PATH or set bucket")
	}
	if err := checkCredentialsFile(); err != nil {
		return nil, err
	}
	// No endpoint option: the library reads STORAGE_EMULATOR_HOST itself,
	// and an endpoint of ours would override it. Client metrics would
	// export to Cloud Monitoring.
	client, err := storage.NewClient(ctx, storage.WithDisabledClientMetrics())
	if err != nil {
		return nil, clientError(err)
	}
	client.SetRetry(
		storage.WithPolicy(storage.RetryAlways),
		storage.WithBackoff(gax.Backoff{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2}),
		storage.WithMaxAttempts(c.attempts()),
	)
	c.client, c.bkt = client, client.Bucket(c.Bucket)
	return c.bkt, nil
}

// attempts returns the bound on a request's attempts.
func (c *ReplicaClient) attempts() int {
	if c.MaxAttempts <= 0 {
		return 10
	}
	return c.MaxAttempts
}

// attemptBound counts the failed attempts of one upload and stops its
// retries at max: the library bounds the other requests by their attempts,
// but retries an upload's requests until its context ends.
type attemptBound struct {
	mu     sync.Mutex
	failed int
	max    int
}

func (a *attemptBound) retry(err error) bool {
	if err == nil {
		return false // the library asks after each answer, good ones too
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.failed++
	return a.failed < a.max && storage.ShouldRetry(err)
}

func (a *attemptBound) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.failed
}

// name returns the object name of a replica-relative path.
func (c *ReplicaClient) name(rel string) string {
	p := CleanPath(c.Path)
	if p == "" {
		return rel
	}
	return path.Join(p, rel)
}

// CheckStore tells, with one cheap request (a listing of at most one
// object under the replica's generations), whether the bucket exists and
// accepts the credentials. Errors that retries may cure (5xx, throttling,
// no connection yet) are retried until ctx ends; of those, a store that
// answered only with server errors gives an error wrapping
// litestream.ErrStoreBusy, and one no connection reached gives the network
// error. Every other error comes at once: credentials and bucket are
// wrong, and no retry will change that.
func (c *ReplicaClient) CheckStore(ctx context.Context) error {
	start := time.Now()
	bkt, err := c.Init(ctx)
	if err != nil {
		return err
	}
	once := bkt.Retryer(storage.WithPolicy(storage.RetryNever))
	q := &storage.Query{Prefix: c.name(litestream.GenerationsDir()) + "/"}
	if err := q.SetAttrSelection([]string{"Name"}); err != nil {
		return err
	}
	return litestream.RetryStoreCheck(ctx, start, func() error {
		var page []*storage.ObjectAttrs
		_, err := iterator.NewPager(once.Objects(ctx, q), 1, "").NextPage(&page)
		if err == nil {
			c.op("LIST", 0)
		}
		return err
	}, func(err error) litestream.CheckFailure { return classify(err, true).check() },
		func(err error, attempts int, noAnswer string) error {
			f := classify(err, true)
			f.attempts = attempts
			if noAnswer != "" {
				f.kind, f.netErr = failUnreachable, errors.New(noAnswer)
			}
			return c.describeAs("", f, err)
		})
}

// list calls fn with every object (or, with a delimiter, prefix) under a
// replica-relative directory, one LIST a page of up to 1000.
func (c *ReplicaClient) list(ctx context.Context, dir, delimiter string, fn func(*storage.ObjectAttrs)) error {
	bkt, err := c.Init(ctx)
	if err != nil {
		return err
	}
	q := &storage.Query{Prefix: c.name(dir) + "/", Delimiter: delimiter}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Created"}); err != nil {
		return err
	}
	pager := iterator.NewPager(bkt.Objects(ctx, q), 1000, "")
	for {
		var page []*storage.ObjectAttrs
		next, err := pager.NextPage(&page)
		if err != nil {
			return c.describe("list "+dir, true, err)
		}
		c.op("LIST", 0)
		for _, a := range page {
			fn(a)
		}
		if next == "" {
			return nil
		}
	}
}

// Generations lists the generations, sorted.
func (c *ReplicaClient) Generations(ctx context.Context) ([]string, error) {
	var out []string
	err := c.list(ctx, litestream.GenerationsDir(), "/", func(a *storage.ObjectAttrs) {
		if a.Prefix == "" {
			return
		}
		if name := path.Base(strings.TrimSuffix(a.Prefix, "/")); litestream.IsGeneration(name) {
			out = append(out, name)
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(out)
	return out, nil
}

// listObjects lists every object under a replica-relative directory.
func (c *ReplicaClient) listObjects(ctx context.Context, dir string) ([]storeclient.Object, error) {
	var out []storeclient.Object
	err := c.list(ctx, dir, "", func(a *storage.ObjectAttrs) {
		out = append(out, storeclient.Object{Name: a.Name, Size: a.Size, Time: a.Created})
	})
	return out, err
}

// store is the client as a storeclient.ObjectStore, which its methods of
// litestream.ReplicaClient call.
func (c *ReplicaClient) store() storeclient.ObjectStore {
	return storeclient.ObjectStore{Name: c.name, List: c.listObjects, Put: c.upload, Get: c.get, Delete: c.deleteObjects}
}

// Snapshots lists a generation's snapshots by index.
func (c *ReplicaClient) Snapshots(ctx context.Context, generation string) ([]litestream.SnapshotInfo, error) {
	return c.store().Snapshots(ctx, generation)
}

// Segments lists a generation's WAL segments by index and offset.
func (c *ReplicaClient) Segments(ctx context.Context, generation string) ([]litestream.SegmentInfo, error) {
	return c.store().Segments(ctx, generation)
}

// WriteSnapshot uploads r as a snapshot.
func (c *ReplicaClient) WriteSnapshot(ctx context.Context, generation string, index int, r io.Reader) (litestream.SnapshotInfo, error) {
	return c.store().WriteSnapshot(ctx, generation, index, r)
}

// WriteSegment uploads r as a WAL segment.
func (c *ReplicaClient) WriteSegment(ctx context.Context, pos litestream.Pos, r io.Reader) (litestream.SegmentInfo, error) {
	return c.store().WriteSegment(ctx, pos, r)
}

// OpenSnapshot opens a stored snapshot.
func (c *ReplicaClient) OpenSnapshot(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return c.store().OpenSnapshot(ctx, generation, index)
}

// OpenSegment opens a stored WAL segment.
func (c *ReplicaClient) OpenSegment(ctx context.Context, pos litestream.Pos) (io.ReadCloser, error) {
	return c.store().OpenSegment(ctx, pos)
}

// DeleteGeneration deletes every object of a generation.
func (c *ReplicaClient) DeleteGeneration(ctx context.Context, generation string) error {
	return c.store().DeleteGeneration(ctx, generation)
}

// DeleteSnapshot deletes a snapshot; a missing one is not an error.
func (c *ReplicaClient) DeleteSnapshot(ctx context.Context, generation string, index int) error {
	return c.store().DeleteSnapshot(ctx, generation, index)
}

// DeleteSegments deletes WAL segments, deleteWorkers at a time; missing ones are not an error.
func (c *ReplicaClient) DeleteSegments(ctx context.Context, positions []litestream.Pos) error {
	return c.store().DeleteSegments(ctx, positions)
}

// deleteObjects deletes objects, deleteWorkers at a time, and returns the
// first error; a missing object is not one (nor is a retried delete whose
// first attempt went through).
func (c *ReplicaClient) deleteObjects(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return nil
	}
	bkt, err := c.Init(ctx)
	if err != nil {
		return err
	}
	err = storeclient.ForEach(ctx, deleteWorkers, names, func(ctx context.Context, name string) error {
		if err := bkt.Object(name).Delete(ctx); err != nil && !errors.Is(err, storage.ErrObjectNotExist) {
			return c.describe("delete "+name, false, err)
		}
		c.op("DELETE", 0)
		return nil
	})
	if err != nil && ctx.Err() != nil && err == context.Cause(ctx) {
		err = c.describe("delete objects", false, ctx.Err()) // ctx ended before any delete failed
	}
	return err
}

// upload stores r at name. An object of up to smallObject bytes is read
// whole first and sent in one request; a larger one is a resumable upload
// of ChunkSize chunks. Either is committed only by the writer's Close: a
// read error or a canceled ctx cancels the writer first, so nothing
// partial becomes an object, and a previous object at name stays. It
// returns the size and the store's creation time.
func (c *ReplicaClient) upload(ctx context.Context, name string, r io.Reader) (int64, time.Time, error) {
	bkt, err := c.Init(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	bp, _ := c.staging.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, smallObject)
		bp = &b
	}
	defer c.staging.Put(bp)
	n, err := io.ReadFull(r, *bp)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return 0, time.Time{}, fmt.Errorf("upload %s: read: %w", name, err)
	}
	whole := err != nil // the reader ended within the buffer
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, c.describe("upload "+name, true, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bound := &attemptBound{max: c.attempts()}
	w := bkt.Object(name).Retryer(storage.WithErrorFunc(bound.retry)).NewWriter(wctx)
	w.ContentType = "application/octet-stream"
	w.ChunkSize = ChunkSize
	if whole {
		w.ChunkSize = max(n, 1)
	}
	total := int64(n)
	// The writer copies what Write is given before it returns (an io.Pipe
	// to its own buffer), so the staging buffer may be reused after.
	_, err = w.Write((*bp)[:n])
	rest := &sourceReader{r: r}
	if err == nil && !whole {
		var m int64
		m, err = io.Copy(w, rest)
		total += m
	}
	if err != nil {
		cancel()
		w.Close()
		if rest.err != nil {
			return 0, time.Time{}, fmt.Errorf("upload %s: read: %w", name, rest.err)
		}
		return 0, time.Time{}, c.uploadFailed(name, bound, err)
	}
	if err := w.Close(); err != nil {
		return 0, time.Time{}, c.uploadFailed(name, bound, err)
	}
	if whole {
		c.op("PUT", total)
	} else {
		// A resumable upload: the session's start, then one request a chunk.
		c.op("PUT", 0)
		for left := total; left > 0; left -= ChunkSize {
			c.op("PUT", min(left, ChunkSize))
		}
	}
	created := time.Now()
	if a := w.Attrs(); a != nil && !a.Created.IsZero() {
		created = a.Created
	}
	return total, created, nil
}

// uploadFailed describes the error of an upload with the attempts made.
func (c *ReplicaClient) uploadFailed(name string, bound *attemptBound, err error) error {
	f := classify(err, true)
	if f.attempts == 0 {
		f.attempts = bound.count()
	}
	return c.describeAs("upload "+name, f, err)
}

// sourceReader keeps the error of the reader an upload copies from, to
// tell it from the writer's.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}
