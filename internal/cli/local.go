package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/ssm-association-batcher/ssm-association-batcher/internal/associate"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/report"
	"github.com/ssm-association-batcher/ssm-association-batcher/internal/request"
)

// Engine is what a local run needs of associate.Engine.
type Engine interface {
	Run(context.Context, associate.Job) (report.Result, error)
	DryRun(context.Context, *request.Request) (report.Plan, error)
}

// LocalBackend runs the engine in this process, as the function would for
// a direct invocation, against whatever endpoints the environment names.
// Its answers are the function's: a result or a plan, redacted, or a 400
// for a request that does not parse. It has no jobs: "Async" is ignored.
type LocalBackend struct {
	Engine     Engine
	MaxEntries int
	// Budget is the time the run may take (the function's would be its
	// Lambda timeout).
	Budget time.Duration
	Notes  io.Writer
}

// Submit runs the request.
func (l LocalBackend) Submit(ctx context.Context, body []byte) (Answer, error) {
	req, err := request.Parse(body, request.Limits{MaxEntries: l.MaxEntries})
	if err != nil {
		var rerr *request.Error
		if !errors.As(err, &rerr) {
			rerr = &request.Error{Status: http.StatusBadRequest, Message: err.Error()}
		}
		e := apiError{Message: rerr.Message}
		for _, fe := range rerr.Errors {
			e.Errors = append(e.Errors, struct {
				Path    string `json:"path"`
				Message string `json:"message"`
			}{fe.Path, fe.Message})
		}
		b, _ := json.Marshal(e)
		return Answer{Status: rerr.Status, Body: b}, nil
	}
	if req.DryRun {
		p, err := l.Engine.DryRun(ctx, req)
		if err != nil {
			return Answer{}, fmt.Errorf("dry run: %w", err)
		}
		b, err := json.Marshal(p.Redacted())
		return Answer{Status: http.StatusOK, Body: b}, err
	}
	if req.Async && l.Notes != nil {
		fmt.Fprintln(l.Notes, `note: "Async" is ignored: a local run is done in this process`)
	}
	start := time.Now()
	end := start.Add(l.Budget)
	wrap := min(max(l.Budget/10, 200*time.Millisecond), 2*time.Second)
	res, err := l.Engine.Run(ctx, associate.Job{
		Request:    req,
		Owner:      localOwner(),
		Deadline:   end.Add(-wrap),
		LeaseUntil: end,
		AnswerBy:   end,
	})
	if err != nil {
		return Answer{}, fmt.Errorf("run: %w", err)
	}
	b, err := json.Marshal(res.Redacted())
	return Answer{Status: http.StatusOK, Body: b}, err
}

// Status: a local run has no jobs.
func (LocalBackend) Status(context.Context, string, string, int) (Answer, error) {
	return Answer{}, errors.New("a local run has no jobs")
}

// localOwner names this run in the claim table, as the function's request
// ID and a random suffix name an invocation.
func localOwner() string {
	host, _ := os.Hostname()
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "batcher-local/" + host + "/" + hex.EncodeToString(b[:])
}
