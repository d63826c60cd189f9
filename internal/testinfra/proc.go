package testinfra

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Option configures StartDynamoDBLocal, StartMoto and StartRIE.
type Option func(*options)

type options struct {
	output          io.Writer
	functionTimeout time.Duration
	startTimeout    time.Duration
	port            int
	host            string
}

// WithOutput copies the child processes' stdout and stderr to w as they
// arrive (for example os.Stderr, or a t.Log writer), besides the buffer that
// Logs returns.
func WithOutput(w io.Writer) Option { return func(o *options) { o.output = w } }

// WithFunctionTimeout sets the Lambda function timeout the emulator enforces
// (AWS_LAMBDA_FUNCTION_TIMEOUT, whole seconds, rounded up; the emulator's
// default is 300 s). An AWS_LAMBDA_FUNCTION_TIMEOUT in env wins over it.
func WithFunctionTimeout(d time.Duration) Option {
	return func(o *options) { o.functionTimeout = d }
}

// WithPort makes StartDynamoDBLocal and StartMoto listen on port instead of
// a free one, for a service meant to be found there (make local-tables); a
// port in use is an error.
func WithPort(port int) Option { return func(o *options) { o.port = port } }

// WithHost makes StartMoto listen on host (default 127.0.0.1), for example
// 0.0.0.0 so that a Lambda container can reach it. DynamoDB Local always
// listens on every interface.
func WithHost(host string) Option { return func(o *options) { o.host = host } }

// WithStartTimeout bounds how long a start waits for the service to answer
// (default 60 s for DynamoDB Local, 10 s for the emulator).
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

func buildOptions(opts []Option) options {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if o.output == nil && os.Getenv("TESTINFRA_VERBOSE") != "" {
		o.output = os.Stderr
	}
	return o
}

// logBuffer keeps the last maxLog bytes a child wrote and optionally copies
// everything to another writer.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	copy io.Writer
}

const maxLog = 4 << 20

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if over := l.buf.Len() - maxLog; over > 0 {
		l.buf.Next(over)
	}
	if l.copy != nil {
		_, _ = l.copy.Write(p) // a failing debug writer must not break the child
	}
	return len(p), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// process is a child started in its own process group.
type process struct {
	cmd    *exec.Cmd
	logs   *logBuffer
	done   chan struct{} // closed when the child has been waited for
	err    error         // Wait's result, valid after done
	closed sync.Once
}

func startProcess(cmd *exec.Cmd, logs *logBuffer) (*process, error) {
	cmd.Stdout = logs
	cmd.Stderr = logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Stdin stays /dev/null.
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, logs: logs, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// targets are the process groups and processes that belong to a child: its
// own group plus those of all its descendants (the Lambda emulator starts the
// function in a process group of its own).
type targets struct{ groups, procs map[int]bool }

func (p *process) targets() targets {
	pid := p.cmd.Process.Pid
	t := targets{groups: map[int]bool{pid: true}, procs: map[int]bool{}}
	for _, d := range descendants(pid) {
		t.procs[d] = true
		if pgid, err := syscall.Getpgid(d); err == nil {
			t.groups[pgid] = true
		}
	}
	delete(t.groups, syscall.Getpgrp()) // never our own group
	return t
}

func (t targets) add(u targets) {
	for g := range u.groups {
		t.groups[g] = true
	}
	for q := range u.procs {
		t.procs[q] = true
	}
}

func (t targets) signal(sig syscall.Signal) {
	for g := range t.groups {
		_ = syscall.Kill(-g, sig)
	}
	for q := range t.procs { // in case a descendant sits in a foreign group
		_ = syscall.Kill(q, sig)
	}
}

func (p *process) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// stop ends the child and everything below it: SIGTERM first when grace > 0,
// SIGKILL to whatever is left after grace (or at once when grace is 0). The
// processes below the child are collected before any signal, because they
// are re-parented once the child exits. Later calls do nothing.
func (p *process) stop(grace time.Duration) error {
	var err error
	p.closed.Do(func() {
		if p.exited() {
			// Reaped already: its pid may be reused, so signal nothing.
			return
		}
		t := p.targets()
		if grace > 0 && !p.exited() {
			t.signal(syscall.SIGTERM)
			p.wait(grace)
		}
		if !p.exited() {
			t.add(p.targets())
		}
		t.signal(syscall.SIGKILL)
		if !p.wait(10 * time.Second) {
			err = fmt.Errorf("testinfra: pid %d still running after SIGKILL", p.cmd.Process.Pid)
		}
	})
	return err
}

// descendants lists the pids below pid, read from /proc (Linux). Elsewhere it
// finds none, and only the child's own process group is signalled.
func descendants(pid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], n)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another process
// may take it before the child binds it; starts retry on a fresh port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls ready every 50 ms until it succeeds, the child exits, ctx
// ends, or timeout passes.
func waitFor(ctx context.Context, p *process, timeout time.Duration, what string, ready func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for {
		if p.exited() {
			return fmt.Errorf("%w: %s exited before it was ready (%v); output:\n%s", errExited, what, p.err, tail(p.logs.String()))
		}
		attempt, cancelAttempt := context.WithTimeout(ctx, 2*time.Second)
		last = ready(attempt)
		cancelAttempt()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testinfra: %s not ready after %v: %v; output:\n%s", what, timeout, last, tail(p.logs.String()))
		case <-p.done:
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var errExited = errors.New("testinfra: child exited")

func tail(s string) string {
	const n = 4000
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func dialable(addr string) func(context.Context) error {
	return func(ctx context.Context) error {
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
}
