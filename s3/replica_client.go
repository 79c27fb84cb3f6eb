// Package s3 is the replica client for Amazon S3 and S3-compatible object
// storage (MinIO, Backblaze B2, DigitalOcean Spaces, Cloudflare R2, ...),
// in the layout of Litestream v0.3 under a key prefix.
//
// Every method refuses a generation or position that
// litestream.ValidateGeneration or Pos.Validate rejects before it builds a
// key. An error describes the failure in one line and keeps the SDK's
// error in its chain; a missing object's wraps os.ErrNotExist.
package s3

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

// PartSize is the multipart upload part size: an upload holds one part in
// memory at a time, whatever the object's size.
const PartSize = 8 << 20

// ReplicaClient stores a replica in an S3 bucket under a key prefix.
type ReplicaClient struct {
	Bucket          string
	Path            string // key prefix, no leading slash
	Region          string // looked up from the bucket when empty and no endpoint
	Endpoint        string // for S3-compatible stores; empty for AWS
	ForcePathStyle  *bool  // default: true when Endpoint is set
	SkipVerify      bool   // accept any TLS certificate
	AccessKeyID     string
	SecretAccessKey string
	MaxAttempts     int // per request, with backoff (default 10)

	// OnOp, if set, is called after each request with "GET", "PUT",
	// "LIST" or "DELETE" and the stored bytes moved.
	OnOp func(op string, bytes int64)

	mu     sync.Mutex
	client *s3.Client
	keyID  string // access key id in use, for error messages

}

var _ litestream.ReplicaClient = (*ReplicaClient)(nil)

// Type returns "s3".
func (c *ReplicaClient) Type() string { return "s3" }

func (c *ReplicaClient) op(op string, n int64) {
	if c.OnOp != nil {
		c.OnOp(op, n)
	}
}

// Init creates the SDK client on first use: credentials, region and
// endpoint resolution. It sends no request unless the region must be looked
// up.
func (c *ReplicaClient) Init(ctx context.Context) (*s3.Client, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.client != nil {
		return c.client, nil
	}
	if c.Bucket == "" {
		return nil, errors.New("s3 replica has no bucket: use s3://BUCKET/PATH or set bucket")
	}
	attempts := c.MaxAttempts
	if attempts <= 0 {
		attempts = 10
	}
	opts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxAttempts = attempts
				o.MaxBackoff = 5 * time.Second
				// Client-side rate limiting would fail requests outright
				// during a long outage; backoff alone is enough.
				o.RateLimiter = noRateLimit{}
				// A response body cut short (a LIST, say) is a dropped
				// connection too; the SDK does not retry it by default.
				o.Retryables = append(o.Retryables, retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
					if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || strings.Contains(err.Error(), "connection reset") {
						return aws.TrueTernary
					}
					return aws.UnknownTernary
				}))
			})
		}),
	}
	// The SDK's own log lines (such as its IMDSv1 fallback warning) go
	// to slog at debug level: printed as they are, they break
	// logging.type json.
	opts = append(opts, awsconfig.WithLogger(logging.LoggerFunc(sdkLog)))
	keyID, secret := c.AccessKeyID, c.SecretAccessKey
	if keyID == "" && secret == "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" && os.Getenv("AWS_SECRET_ACCESS_KEY") == "" {
		keyID, secret = os.Getenv("LITESTREAM_ACCESS_KEY_ID"), os.Getenv("LITESTREAM_SECRET_ACCESS_KEY")
	}
	switch {
	case keyID != "" && secret == "":
		return nil, fmt.Errorf("S3 access key id %q has no secret: set LITESTREAM_SECRET_ACCESS_KEY, or secret-access-key in the config", keyID)
	case keyID == "" && secret != "":
		return nil, errors.New("an S3 secret access key is set without its key id: set LITESTREAM_ACCESS_KEY_ID, or access-key-id in the config")
	}
	if keyID != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(keyID, secret, "")))
		c.keyID = keyID
	} else {
		c.keyID = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if c.SkipVerify {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // the user asked for it
		opts = append(opts, awsconfig.WithHTTPClient(&http.Client{Transport: tr}))
	}
	region := c.Region
	if region == "" && c.Endpoint != "" {
		region = "us-east-1"
	}
	opts = append(opts, awsconfig.WithRegion(storeclient.OrDefault(region, "us-east-1")))
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 configuration: %w", err)
	}
	cfg.Credentials = credentialChain{cfg.Credentials}
	pathStyle := c.Endpoint != ""
	if c.ForcePathStyle != nil {
		pathStyle = *c.ForcePathStyle
	}
	clientOpts := func(o *s3.Options) {
		if c.Endpoint != "" {
			o.BaseEndpoint = aws.String(c.Endpoint)
		}
		o.UsePathStyle = pathStyle
		// Many S3-compatible stores reject the newer default checksums.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	client := s3.NewFromConfig(cfg, clientOpts)
	if region == "" {
		found, err := manager.GetBucketRegion(ctx, client, c.Bucket)
		if err != nil {
			return nil, c.describe("look up the region of bucket "+c.Bucket, err)
		}
		client = s3.NewFromConfig(cfg, clientOpts, func(o *s3.Options) { o.Region = found })
	}
	c.client = client
	return client, nil
}

// credentialChain marks the failure of the AWS default credential chain
// with ErrNoCredentials, so that it is reported as missing credentials
// rather than as the chain's last provider's internals (the instance
// metadata service's, on a host that is not an EC2 instance). Those go to
// the debug log.
type credentialChain struct{ p aws.CredentialsProvider }

func (c credentialChain) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := c.p.Retrieve(ctx)
	if err != nil {
		slog.Debug("the AWS default credential chain found no S3 credentials", "cause", err)
		return creds, fmt.Errorf("%w: %w", ErrNoCredentials, err)
	}
	return creds, nil
}

// sdkLog passes a log line of the AWS SDK to slog at debug level.
func sdkLog(classification logging.Classification, format string, v ...any) {
	slog.Debug(fmt.Sprintf(format, v...), "source", "aws-sdk", "sdk_level", string(classification))
}

// CheckStore tells, with one cheap request (a LIST of at most one key
// under the replica's generations), whether the bucket exists and accepts
// the credentials. Errors that retries may cure (5xx, throttling, no
// connection yet) are retried until ctx ends; of those, a store that
// answered only with server errors gives an error wrapping
// litestream.ErrStoreBusy, and one no connection reached gives the network
// error: taken, at startup, for a wrong endpoint or a network that is down.
// Every other error comes at once: credentials, bucket and region are
// wrong, and no retry will change that.
func (c *ReplicaClient) CheckStore(ctx context.Context) error {
	start := time.Now()
	client, err := c.Init(ctx)
	if err != nil {
		return err
	}
	in := &s3.ListObjectsV2Input{
		Bucket: aws.String(c.Bucket), Prefix: aws.String(c.key(litestream.GenerationsDir()) + "/"), MaxKeys: aws.Int32(1),
	}
	oneAttempt := func(o *s3.Options) { o.Retryer = retry.AddWithMaxAttempts(o.Retryer, 1) }
	return litestream.RetryStoreCheck(ctx, start, func() error {
		_, err := client.ListObjectsV2(ctx, in, oneAttempt)
		if err == nil {
			c.op("LIST", 0)
		}
		return err
	}, func(err error) litestream.CheckFailure { return classify(err).check() },
		func(err error, attempts int, noAnswer string) error {
			f := classify(err)
			f.attempts = attempts
			if noAnswer != "" {
				f.kind, f.netErr = failUnreachable, errors.New(noAnswer)
			}
			if f.kind == failNotFound {
				f.kind = failNoBucket // a LIST in a bucket that exists never answers 404
			}
			return c.describeAs("", f, err)
		})
}

type noRateLimit struct{}

func (noRateLimit) GetToken(context.Context, uint) (func() error, error) {
	return func() error { return nil }, nil
}
func (noRateLimit) AddTokens(uint) error { return nil }

// key returns the object key of a replica-relative path.
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
	var out []string
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{
		Bucket: aws.String(c.Bucket), Prefix: aws.String(c.key(litestream.GenerationsDir()) + "/"), Delimiter: aws.String("/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, c.describe("list generations", err)
		}
		c.op("LIST", 0)
		for _, cp := range page.CommonPrefixes {
			name := path.Base(strings.TrimSuffix(aws.ToString(cp.Prefix), "/"))
			if litestream.IsGeneration(name) {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// list returns every object under a replica-relative directory.
func (c *ReplicaClient) list(ctx context.Context, dir string) ([]storeclient.Object, error) {
	client, err := c.Init(ctx)
	if err != nil {
		return nil, err
	}
	var out []storeclient.Object
	p := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{
		Bucket: aws.String(c.Bucket), Prefix: aws.String(c.key(dir) + "/"),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, c.describe("list "+dir, err)
		}
		c.op("LIST", 0)
		for _, o := range page.Contents {
			out = append(out, storeclient.Object{Name: aws.ToString(o.Key), Size: aws.ToInt64(o.Size), Time: aws.ToTime(o.LastModified)})
		}
	}
	return out, nil
}

// store is the client as a storeclient.ObjectStore, which its methods of
// litestream.ReplicaClient call.
func (c *ReplicaClient) store() storeclient.ObjectStore {
	return storeclient.ObjectStore{Name: c.key, List: c.list, Put: c.put, Get: c.get, Delete: c.deleteKeys}
}

// put is upload with the time it ended for CreatedAt: S3's answer to an
// upload holds no creation time.
func (c *ReplicaClient) put(ctx context.Context, key string, r io.Reader) (int64, time.Time, error) {
	n, err := c.upload(ctx, key, r)
	return n, time.Now(), err
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

// DeleteSegments deletes WAL segments, up to 1000 per request; missing ones are not an error.
func (c *ReplicaClient) DeleteSegments(ctx context.Context, positions []litestream.Pos) error {
	return c.store().DeleteSegments(ctx, positions)
}

func (c *ReplicaClient) deleteKeys(ctx context.Context, keys []string) error {
	client, err := c.Init(ctx)
	if err != nil {
		return err
	}
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		ids := make([]types.ObjectIdentifier, n)
		for i, k := range keys[:n] {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(c.Bucket), Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		})
		if err != nil {
			return c.describe("delete objects", err)
		}
		c.op("DELETE", 0)
		for _, e := range out.Errors {
			if aws.ToString(e.Code) != "NoSuchKey" {
				return fmt.Errorf("delete %s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
			}
		}
		keys = keys[n:]
	}
	return nil
}

// upload stores r at key: one PutObject when it fits in a part, else a
// multipart upload with one part in memory at a time. A failed multipart
// upload is aborted, so nothing partial becomes visible.
func (c *ReplicaClient) upload(ctx context.Context, key string, r io.Reader) (int64, error) {
	client, err := c.Init(ctx)
	if err != nil {
		return 0, err
	}
	buf, err := readPart(r)
	if err != nil {
		return 0, fmt.Errorf("upload %s: read: %w", key, err)
	}
	n := len(buf)
	// The part buffer grows with what is read, so an idle client holds
	// none and a small segment costs its own size, not PartSize. A buffer
	// handed to a PutObject is never reused: net/http may still read a
	// request's body after the call returns (an early error response).
	if n < PartSize {
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(c.Bucket), Key: aws.String(key), Body: bytes.NewReader(buf), ContentLength: aws.Int64(int64(n)),
		}); err != nil {
			return 0, c.describe("upload "+key, err)
		}
		c.op("PUT", int64(n))
		return int64(n), nil
	}
	mp, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)})
	if err != nil {
		return 0, c.describe("upload "+key, err)
	}
	c.op("PUT", 0)
	total, err := c.uploadParts(ctx, client, key, mp.UploadId, buf[:PartSize], n, r)
	if err != nil {
		// Abort with a fresh context: the caller's may be what failed.
		actx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: aws.String(c.Bucket), Key: aws.String(key), UploadId: mp.UploadId})
		return 0, err
	}
	return total, nil
}

// readPart reads r until PartSize bytes or its end, into a buffer that
// starts at 64 KiB and doubles as needed, up to a capacity of PartSize.
func readPart(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 64<<10)
	for len(buf) < PartSize {
		if len(buf) == cap(buf) {
			buf = append(make([]byte, 0, min(2*cap(buf), PartSize)), buf...)
		}
		m, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
	return buf, nil
}

func (c *ReplicaClient) uploadParts(ctx context.Context, client *s3.Client, key string, uploadID *string, buf []byte, n int, r io.Reader) (int64, error) {
	var parts []types.CompletedPart
	var total int64
	for num := int32(1); n > 0; num++ {
		out, err := client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: aws.String(c.Bucket), Key: aws.String(key), UploadId: uploadID, PartNumber: aws.Int32(num),
			Body: bytes.NewReader(buf[:n]), ContentLength: aws.Int64(int64(n)),
		})
		if err != nil {
			return 0, c.describe(fmt.Sprintf("upload %s part %d", key, num), err)
		}
		c.op("PUT", int64(n))
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(num)})
		total += int64(n)
		var rerr error
		n, rerr = io.ReadFull(r, buf)
		if rerr != nil && rerr != io.ErrUnexpectedEOF && rerr != io.EOF {
			return 0, fmt.Errorf("upload %s: read: %w", key, rerr)
		}
	}
	if _, err := client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: aws.String(c.Bucket), Key: aws.String(key), UploadId: uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}); err != nil {
		return 0, c.describe("complete upload of "+key, err)
	}
	c.op("PUT", 0)
	return total, nil
}
