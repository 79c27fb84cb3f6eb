package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
)

// runChild runs the application command line as a child process with the
// inherited environment, forwards SIGINT and SIGTERM to it, and returns its
// exit code once it has exited.
func runChild(ctx context.Context, cmdline string, logger *slog.Logger) (int, error) {
	argv, err := splitCommandLine(cmdline)
	if err != nil {
		return 0, fmt.Errorf("-exec %q: %w", cmdline, err)
	}
	if len(argv) == 0 {
		return 0, errors.New("-exec: empty command")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return 0, fmt.Errorf("-exec: command %q not found: check the name and $PATH", argv[0])
	}
	cmd := exec.Command(path, argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("-exec: start %q: %w", argv[0], err)
	}
	logger.Info("child process started", "cmd", argv[0], "pid", cmd.Process.Pid)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-sigs:
			logger.Info("forwarding signal to child process", "signal", sig.String())
			_ = cmd.Process.Signal(sig)
		case err := <-done:
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
				if code < 0 {
					code = 1 // killed by a signal
				}
			} else if err != nil {
				return 0, fmt.Errorf("-exec: wait: %w", err)
			}
			logger.Info("child process exited; making a last sync", "exit_code", code)
			return code, nil
		}
	}
}

// splitCommandLine splits a command line into words the way a POSIX shell
// does for plain words: whitespace separates, single quotes keep text
// literally, double quotes keep spaces and allow \" and \\, a backslash
// outside quotes escapes the next character.
func splitCommandLine(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\' || s[i+1] == '$') {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case ch == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
			inWord = true
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
