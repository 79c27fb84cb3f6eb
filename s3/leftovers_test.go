package s3_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/litestream-go/litestream/internal/s3test"
)

// TestRemoveLeftovers: the multipart uploads a killed process left under
// the replica's generations are aborted; one begun after the start (in
// progress) and one outside the replica stay.
func TestRemoveLeftovers(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	c := newClient(srv.Endpoint(), bucket)
	other := newClient(srv.Endpoint(), bucket) // another replica in the same bucket
	ctx := context.Background()
	client, err := c.Init(ctx)
	if err != nil {
		t.Fatal(err)
	}
	begin := func(key string) {
		t.Helper()
		if _, err := client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	gen := c.Path + "/generations/0123456789abcdef/"
	begin(gen + "snapshots/00000001.snapshot.lz4")
	begin(gen + "wal/00000001_00000000.wal.lz4")
	begin(other.Path + "/generations/0123456789abcdef/snapshots/00000001.snapshot.lz4")
	// Upload times have a resolution of a second on some servers.
	time.Sleep(1100 * time.Millisecond)
	start := time.Now()
	time.Sleep(1100 * time.Millisecond)
	begin(gen + "snapshots/00000002.snapshot.lz4")

	n, err := c.RemoveLeftovers(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("aborted %d uploads, want 2", n)
	}
	out, err := client.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, u := range out.Uploads {
		left = append(left, aws.ToString(u.Key))
	}
	slices.Sort(left)
	want := []string{gen + "snapshots/00000002.snapshot.lz4", other.Path + "/generations/0123456789abcdef/snapshots/00000001.snapshot.lz4"}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("uploads left: %v, want %v", left, want)
	}
	if n, err := c.RemoveLeftovers(ctx, start); n != 0 || err != nil {
		t.Fatalf("second run: aborted %d, err %v", n, err)
	}
}
