package s3test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
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
	bin, err := findBinary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "--port", addr, "--access", AccessKey, "--secret", SecretKey, "posix", dir)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start versitygw: %w", err)
	}
	p := &Process{Addr: addr, cmd: cmd}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get("http://" + addr); err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			p.Stop()
			return nil, fmt.Errorf("versitygw did not answer on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
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
