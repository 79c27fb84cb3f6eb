// Package s3test runs a real S3-compatible server (versitygw) on 127.0.0.1
// for tests, and a fault-injecting proxy to put in front of it.
package s3test

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/litestream-go/litestream/internal/testserver"
)

// Credentials of the test server.
const (
	AccessKey = "litestreamtest"
	SecretKey = "litestreamtestsecret"
)

// Server is a versitygw process serving a posix directory.
type Server struct {
	t    testing.TB
	Addr string // 127.0.0.1:PORT
	proc *testserver.Process
}

// Endpoint returns the server's http URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr }

// binary is where versitygw is looked for: $VERSITYGW, the repository's
// bin/, PATH, then $GOPATH/bin.
var binary = testserver.Binary{
	Name: "versitygw", Env: "VERSITYGW", Paths: []string{"bin/versitygw"}, GoBin: true,
	Hint: "or go install github.com/versity/versitygw/cmd/versitygw@v1.8.0",
}

// command is versitygw's command line on addr, serving dir.
func command(bin, addr, dir string) *exec.Cmd {
	return exec.Command(bin, "--port", addr, "--access", AccessKey, "--secret", SecretKey, "posix", dir)
}

// StartServer starts versitygw on a free port and stops it when the test
// ends. A missing binary fails the test: S3 tests are never skipped.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, addr := testserver.Prepare(t, binary)
	dir := t.TempDir()
	s := &Server{t: t, Addr: addr, proc: &testserver.Process{
		Name: "versitygw", Addr: addr, Log: filepath.Join(t.TempDir(), "versitygw.log"),
		Command: func() *exec.Cmd { return command(bin, addr, dir) },
		Ready:   testserver.HTTPAnswers("http://" + addr),
	}}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts the server process on the same port and directory.
func (s *Server) Start() {
	s.t.Helper()
	s.proc.Start(s.t)
}

// Stop stops the server process; its data stays for a later Start.
func (s *Server) Stop() { s.proc.Stop() }

// Client returns an SDK client for the server.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}

// CreateBucket makes a bucket with a name unique to the test and returns it.
func (s *Server) CreateBucket(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("b%d", time.Now().UnixNano())
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return name
}
