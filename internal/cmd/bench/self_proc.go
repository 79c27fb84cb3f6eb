package main

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// selfProc is this bench binary run as a helper process of its own (the
// bare copier, the spinner), as a replicator runs beside the application.
type selfProc struct {
	name string
	cmd  *exec.Cmd
}

// startSelfProc starts this binary with the helper's command and args.
func startSelfProc(name string, args ...string) (*selfProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	cmd := exec.Command(self, append([]string{name}, args...)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &selfProc{name: name, cmd: cmd}, nil
}

// pid returns the helper's process id.
func (p *selfProc) pid() int { return p.cmd.Process.Pid }

// stop interrupts the helper and waits for it.
func (p *selfProc) stop() error {
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("%s: %w", p.name, err)
	}
	return nil
}
