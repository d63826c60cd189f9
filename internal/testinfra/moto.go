package testinfra

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"time"
)

// ToolMoto is moto's server, preinstalled with the Python tools of this
// machine kind (it cannot be installed here: there is no PyPI). It stands in
// for SQS and EventBridge, which it implements; it does not implement SSM
// associations.
const ToolMoto = "moto_server"

// Moto is a running moto server on 127.0.0.1.
type Moto struct {
	proc     *process
	endpoint string
}

// StartMoto runs moto_server on a free 127.0.0.1 port and returns once it
// answers.
func StartMoto(ctx context.Context, opts ...Option) (*Moto, error) {
	o := buildOptions(opts)
	if o.startTimeout == 0 {
		o.startTimeout = 30 * time.Second
	}
	bin, err := exec.LookPath(ToolMoto)
	if err != nil {
		return nil, fmt.Errorf("testinfra: %s is not on PATH; it ships with this machine kind's Python tools (pip install 'moto[server]' elsewhere)", ToolMoto)
	}
	port := o.port
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, fmt.Errorf("testinfra: free port: %w", err)
		}
	}
	host := o.host
	if host == "" {
		host = "127.0.0.1"
	}
	proc, err := startProcess(exec.Command(bin, "-H", host, "-p", strconv.Itoa(port)), &logBuffer{copy: o.output})
	if err != nil {
		return nil, fmt.Errorf("testinfra: start moto: %w", err)
	}
	m := &Moto{proc: proc, endpoint: "http://127.0.0.1:" + strconv.Itoa(port)}
	err = waitFor(ctx, proc, o.startTimeout, "moto", func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, m.endpoint+"/moto-api/", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	if err != nil {
		_ = m.Close()
		return nil, err
	}
	return m, nil
}

// Endpoint is the URL of the server: "http://127.0.0.1:PORT".
func (m *Moto) Endpoint() string { return m.endpoint }

// Close stops the server.
func (m *Moto) Close() error { return m.proc.stop(2 * time.Second) }

// Logs returns what the server printed.
func (m *Moto) Logs() string { return m.proc.logs.String() }
