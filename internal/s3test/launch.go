package s3test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/litestream-go/litestream/internal/testserver"
)

// Process is a versitygw server started outside of a test (benchmarks).
type Process struct {
	Addr string
	cmd  *exec.Cmd
}

// Pid is the server's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Launch starts versitygw on a free 127.0.0.1 port serving dir and creates
// bucket. Stop it with Stop.
func Launch(dir, bucket string) (*Process, error) {
	bin, err := binary.Find()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	addr, err := testserver.FreeAddr()
	if err != nil {
		return nil, err
	}
	cmd := command(bin, addr, dir)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	p := &Process{Addr: addr, cmd: cmd}
	if err := testserver.WaitReady(testserver.HTTPAnswers("http://"+addr), nil, 30*time.Second, 50*time.Millisecond); err != nil {
		p.Stop()
		return nil, fmt.Errorf("versitygw on %s: %w", addr, err)
	}
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(p.Endpoint()), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, "")})
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		p.Stop()
		return nil, fmt.Errorf("create bucket: %w", err)
	}
	return p, nil
}

// Endpoint returns the server's URL.
func (p *Process) Endpoint() string { return "http://" + p.Addr }

// Stop kills the server.
func (p *Process) Stop() {
	p.cmd.Process.Signal(os.Kill)
	p.cmd.Wait()
}
