// Package abs is the replica client for Azure Blob Storage (and Azurite),
// in the layout of Litestream v0.3 under a blob name prefix in one
// container, signed with the storage account's shared key.
//
// Guarantees of the client (every method keeps them):
//  1. Writes are atomic: an object is one Put Blob when it fits in a block,
//     else staged blocks made visible by one Put Block List. A write cut
//     short (an error, a canceled context, a killed process) commits
//     nothing, and an overwrite that fails leaves the previous blob.
//  2. Memory does not grow with object size: an upload holds at most
//     uploadConcurrency blocks of BlockSize, a download streams its body.
//  3. Requests that fail transiently (no connection, a connection reset, a
//     body cut short, 5xx, 408, 429) are retried with backoff, at most
//     MaxRetries times; a download cut short resumes at the byte reached,
//     at most storeclient.MaxResumes times (see get.go).
//  4. Timestamps are the service's: CreatedAt is a blob's Last-Modified.
//  5. OnOp is called once per request that succeeded (retries included in
//     it), by opCounter; nothing runs while the client is idle.
//  6. Every method refuses a generation or position that
//     litestream.ValidateGeneration or Pos.Validate rejects before it
//     builds a blob name.
//
// Leftovers: the blocks an upload staged before it was cut short are
// uncommitted. No listing or read shows them; the service discards them
// when a later upload of the same name commits, and garbage-collects them
// after 7 days otherwise. No request removes them sooner without making
// an empty blob visible, so the client is not a LeftoverRemover.
package abs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

// BlockSize is the size of an upload's blocks: an object up to this size
// is stored with one request, and an upload holds at most
// uploadConcurrency blocks in memory whatever the object's size.
const BlockSize = 4 << 20

// uploadConcurrency is how many blocks of one upload are staged at once.
const uploadConcurrency = 2

// deleteConcurrency is how many blob deletes run at once: the service
// deletes one blob per request.
const deleteConcurrency = 16

// AccountKeyEnv is the environment variable that holds the account key
// when the client has none, as in Litestream v0.3.
const AccountKeyEnv = "LITESTREAM_AZURE_ACCOUNT_KEY"

// ReplicaClient stores a replica in an Azure Blob Storage container under
// a blob name prefix.
type ReplicaClient struct {
	AccountName string // the storage account
	AccountKey  string // its shared key, base64; else $LITESTREAM_AZURE_ACCOUNT_KEY
	Bucket      string // the container
	Path        string // blob name prefix, no leading slash
	Endpoint    string // service URL; default https://ACCOUNT.blob.core.windows.net/
	MaxRetries  int    // retries per request, with backoff (default 9)

	// OnOp, if set, is called after each request with "GET", "PUT",
	// "LIST" or "DELETE" and the stored bytes moved.
	OnOp func(op string, bytes int64)

	mu     sync.Mutex
	client *container.Client
}

var _ litestream.ReplicaClient = (*ReplicaClient)(nil)

// Type returns "abs".
func (c *ReplicaClient) Type() string { return "abs" }

func (c *ReplicaClient) op(op string, n int64) {
	if c.OnOp != nil {
		c.OnOp(op, n)
	}
}

// endpoint returns the service URL in use, without a trailing slash.
func (c *ReplicaClient) endpoint() string {
	if c.Endpoint != "" {
		return strings.TrimRight(c.Endpoint, "/")
	}
	return "https://" + c.AccountName + ".blob.core.windows.net"
}

// Init creates the SDK client on first use. It sends no request.
func (c *ReplicaClient) Init(ctx context.Context) (*container.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	if c.Bucket == "" {
		return nil, errors.New("abs replica has no container: use abs://ACCOUNT@CONTAINER/PATH or set bucket")
	}
	if c.AccountName == "" {
		return nil, errors.New("abs replica has no storage account: use abs://ACCOUNT@CONTAINER/PATH or set account-name")
	}
	key := c.AccountKey
	if key == "" {
		key = os.Getenv(AccountKeyEnv)
	}
	if key == "" {
		return nil, fmt.Errorf("%w for storage account %q: set %s, or account-key in the config", ErrNoAccountKey, c.AccountName, AccountKeyEnv)
	}
	cred, err := container.NewSharedKeyCredential(c.AccountName, key)
	if err != nil {
		// The SDK's text names the byte offset, never the key.
		return nil, fmt.Errorf("the account key of storage account %q is not valid base64: copy it again from the account's access keys", c.AccountName)
	}
	u, err := url.Parse(c.endpoint())
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("abs endpoint %q is not a URL: write it as https://ACCOUNT.blob.core.windows.net/ or http://HOST:PORT/ACCOUNT", c.Endpoint)
	}
	retries := int32(c.MaxRetries)
	if retries == 0 {
		retries = 9
	}
	opts := &container.ClientOptions{ClientOptions: azcore.ClientOptions{
		Retry: policy.RetryOptions{
			MaxRetries:    retries,
			RetryDelay:    250 * time.Millisecond,
			MaxRetryDelay: 5 * time.Second,
		},
		Telemetry:       policy.TelemetryOptions{Disabled: true},
		PerCallPolicies: []policy.Policy{opCounter{c}},
	}}
	client, err := container.NewClientWithSharedKeyCredential(c.endpoint()+"/"+url.PathEscape(c.Bucket), cred, opts)
	if err != nil {
		return nil, fmt.Errorf("abs client: %w", err)
	}
	c.client = client
	return client, nil
}

// opCounter calls OnOp after each request that succeeded, outside the
// retry policy, so a request retried counts once.
type opCounter struct{ c *ReplicaClient }

func (p opCounter) Do(req *policy.Request) (*http.Response, error) {
	resp, err := req.Next()
	if err != nil || resp.StatusCode >= 400 || p.c.OnOp == nil {
		return resp, err
	}
	raw := req.Raw()
	q := raw.URL.Query()
	switch raw.Method {
	case http.MethodGet, http.MethodHead:
		if q.Get("comp") == "list" {
			p.c.op("LIST", 0)
		} else {
			p.c.op("GET", max(resp.ContentLength, 0))
		}
	case http.MethodPut:
		n := raw.ContentLength
		if n <= 0 {
			n, _ = strconv.ParseInt(raw.Header.Get("Content-Length"), 10, 64)
		}
		if q.Get("comp") == "blocklist" {
			n = 0 // the blocks' bytes were counted when staged
		}
		p.c.op("PUT", n)
	case http.MethodDelete:
		p.c.op("DELETE", 0)
	}
	return resp, err
}

// CheckStore tells, with one cheap request (a listing of at most one blob
// under the replica's generations), whether the container exists and
// accepts the account key. Errors that retries may cure (5xx, throttling,
// no connection yet) are retried until ctx ends; of those, a service that
// answered only with server errors gives an error wrapping
// litestream.ErrStoreBusy, and one no connection reached gives the network
// error. Every other error comes at once: the key, the account or the
// container is wrong, and no retry will change that.
func (c *ReplicaClient) CheckStore(ctx context.Context) error {
	start := time.Now()
	client, err := c.Init(ctx)
	if err != nil {
		return err
	}
	prefix := c.key(litestream.GenerationsDir()) + "/"
	one := int32(1)
	return litestream.RetryStoreCheck(ctx, start, func() error {
		// One try per attempt: RetryStoreCheck, not the SDK, decides on retries.
		actx := policy.WithRetryOptions(ctx, policy.RetryOptions{MaxRetries: -1})
		_, err := client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix, MaxResults: &one}).NextPage(actx)
		return err
	}, func(err error) litestream.CheckFailure { return classify(err).check() },
		func(err error, _ int, noAnswer string) error {
			f := classify(err)
			if noAnswer != "" {
				f.kind, f.message = failUnreachable, noAnswer
			}
			if f.kind == failNotFound {
				f.kind = failNoContainer // a listing in a container that exists never answers 404
			}
			return c.describeAs("", f, err)
		})
}

// key returns the blob name of a replica-relative path.
func (c *ReplicaClient) key(rel string) string {
	p := strings.Trim(c.Path, "/")
	if p == "" {
		return rel
	}
	return p + "/" + rel
}

// Generations lists the generations, sorted.
func (c *ReplicaClient) Generations(ctx context.Context) ([]string, error) {
	client, err := c.Init(ctx)
	if err != nil {
		return nil, err
	}
	prefix := c.key(litestream.GenerationsDir()) + "/"
	var out []string
	pager := client.NewListBlobsHierarchyPager("/", &container.ListBlobsHierarchyOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, c.describe("list generations", err)
		}
		if page.Segment == nil {
			continue
		}
		for _, p := range page.Segment.BlobPrefixes {
			if p.Name == nil {
				continue
			}
			name := path.Base(strings.TrimSuffix(*p.Name, "/"))
			if litestream.IsGeneration(name) {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// list returns every blob under a replica-relative directory, all pages.
func (c *ReplicaClient) list(ctx context.Context, dir string) ([]storeclient.Object, error) {
	client, err := c.Init(ctx)
	if err != nil {
		return nil, err
	}
	prefix := c.key(dir) + "/"
	var out []storeclient.Object
	pager := client.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &prefix})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, c.describe("list "+dir, err)
		}
		if page.Segment == nil {
			continue
		}
		for _, b := range page.Segment.BlobItems {
			if b.Name == nil {
				continue
			}
			o := storeclient.Object{Name: *b.Name}
			if p := b.Properties; p != nil {
				if p.ContentLength != nil {
					o.Size = *p.ContentLength
				}
				if p.LastModified != nil {
					o.Time = *p.LastModified
				}
			}
			out = append(out, o)
		}
	}
	return out, nil
}

// store is the client as a storeclient.ObjectStore, which its methods of
// litestream.ReplicaClient call.
func (c *ReplicaClient) store() storeclient.ObjectStore {
	return storeclient.ObjectStore{Name: c.key, List: c.list, Put: c.upload, Get: c.get, Delete: c.deleteBlobs}
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

// DeleteSegments deletes WAL segments, deleteConcurrency at a time; missing ones are not an error.
func (c *ReplicaClient) DeleteSegments(ctx context.Context, positions []litestream.Pos) error {
	return c.store().DeleteSegments(ctx, positions)
}

// deleteBlobs deletes blobs, deleteConcurrency at a time; missing ones are
// not an error. It returns the first error, after the deletes under way
// have ended.
func (c *ReplicaClient) deleteBlobs(ctx context.Context, names []string) error {
	client, err := c.Init(ctx)
	if err != nil {
		return err
	}
	return storeclient.ForEach(ctx, deleteConcurrency, names, func(ctx context.Context, name string) error {
		if _, err := client.NewBlobClient(name).Delete(ctx, nil); err != nil {
			if err = c.describe("delete "+name, err); !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
		return nil
	})
}

// upload stores r at name as a block blob: one Put Blob when it fits in a
// block, else blocks staged uploadConcurrency at a time and committed by
// one Put Block List. It returns the size and the blob's Last-Modified.
func (c *ReplicaClient) upload(ctx context.Context, name string, r io.Reader) (int64, time.Time, error) {
	client, err := c.Init(ctx)
	if err != nil {
		return 0, time.Time{}, err
	}
	cr := &countingReader{r: r}
	ctype := "application/octet-stream" // as v0.3 sets it
	resp, err := client.NewBlockBlobClient(name).UploadStream(ctx, cr, &blockblob.UploadStreamOptions{
		BlockSize: BlockSize, Concurrency: uploadConcurrency,
		HTTPHeaders: &blob.HTTPHeaders{BlobContentType: &ctype},
	})
	if err != nil {
		if cr.err != nil && errors.Is(err, cr.err) {
			return 0, time.Time{}, fmt.Errorf("upload %s: read: %w", name, err)
		}
		return 0, time.Time{}, c.describe("upload "+name, err)
	}
	t := time.Now()
	if resp.LastModified != nil {
		t = *resp.LastModified
	}
	return cr.n, t, nil
}

// countingReader counts the bytes read and keeps the reader's error, so
// that a failed upload tells the source's failure from the service's.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if err != nil && err != io.EOF {
		r.err = err
	}
	return n, err
}
