package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// cpuTimes is the user and system CPU time of this process so far.
type cpuTimes struct{ user, sys time.Duration }

func processCPU() cpuTimes {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return cpuTimes{
		user: time.Duration(ru.Utime.Nano()),
		sys:  time.Duration(ru.Stime.Nano()),
	}
}

func (c cpuTimes) sub(o cpuTimes) cpuTimes { return cpuTimes{c.user - o.user, c.sys - o.sys} }
func (c cpuTimes) total() time.Duration    { return c.user + c.sys }

// resetPeakRSS resets the kernel's high-water mark of this process's
// resident set (VmHWM), so that peakRSS reports the peak of one run only.
// It needs Linux ≥ 4.0; on failure the mark keeps counting from start.
func resetPeakRSS() bool {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
}

// peakRSS is VmHWM of this process, in bytes.
func peakRSS() int64 { return procStatusKB("/proc/self/status", "VmHWM:") * 1024 }

func procStatusKB(path, field string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}

// heapSampler records the peak of the Go heap in use (live and not yet
// swept objects) by sampling runtime/metrics every 10 ms.
type heapSampler struct {
	peak atomic.Uint64
	stop chan struct{}
	done chan struct{}
}

const heapMetric = "/memory/classes/heap/objects:bytes"

func startHeapSampler() *heapSampler {
	h := &heapSampler{stop: make(chan struct{}), done: make(chan struct{})}
	sample := []metrics.Sample{{Name: heapMetric}}
	read := func() {
		metrics.Read(sample)
		if v := sample[0].Value.Uint64(); v > h.peak.Load() {
			h.peak.Store(v)
		}
	}
	read()
	go func() {
		defer close(h.done)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				read()
			case <-h.stop:
				read()
				return
			}
		}
	}()
	return h
}

func (h *heapSampler) Stop() uint64 {
	close(h.stop)
	<-h.done
	return h.peak.Load()
}

// countingProxy forwards every request to target and counts them by the
// operation of their X-Amz-Target header ("DynamoDB_20120810.PutItem" counts
// as "PutItem"), and counts the items of batch and transactional writes,
// which are billed per item, and apart the writes of owner records (the
// invocation's heartbeat, dedupe/owner.go), which are in the operation
// counts too. Its transport keeps enough idle connections for
// the engine's 16 concurrent claims, so the proxy adds no connection churn.
type countingProxy struct {
	rp     *httputil.ReverseProxy
	mu     sync.Mutex
	counts map[string]int
}

// itemsSuffix marks the item count of an operation in counts:
// "BatchWriteItem" counts requests, "BatchWriteItem items" their items.
const itemsSuffix = " items"

// ownerMark marks the owner-record writes of an operation in counts:
// "owner PutItem" (StartOwner), "owner UpdateItem" (RenewOwner). They are
// counted in "PutItem" and "UpdateItem" as well.
const ownerMark = "owner "

// paceMark marks the writes of the rate memory's item (pace.Memory's
// Join, Sync and Leave: "pace UpdateItem"), counted in "UpdateItem" too.
const paceMark = "pace "

// paceKey is how the rate memory's key reads in a request body.
var paceKey = []byte(`{"S":"` + rateMemoryKey + `"}`)

// ownerKey is how an owner record's key reads in a request body: the
// dedupe store keys them "owner#<owner>" (claim keys start with a document
// name).
var ownerKey = []byte(`{"S":"owner#`)

func newCountingProxy(target string) (*countingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 256
	t.DisableCompression = true
	rp.Transport = t
	return &countingProxy{rp: rp, counts: map[string]int{}}, nil
}

func (p *countingProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op := r.Header.Get("X-Amz-Target")
	if i := strings.LastIndexByte(op, '.'); i >= 0 {
		op = op[i+1:]
	}
	items, owner, paced := 0, false, false
	switch op {
	case "BatchWriteItem", "TransactWriteItems", "PutItem", "UpdateItem":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if op == "PutItem" || op == "UpdateItem" {
			owner = bytes.Contains(body, ownerKey)
			paced = bytes.Contains(body, paceKey)
		} else {
			items = countWriteItems(body)
		}
	}
	p.mu.Lock()
	p.counts[op]++
	if items > 0 {
		p.counts[op+itemsSuffix] += items
	}
	if owner {
		p.counts[ownerMark+op]++
	}
	if paced {
		p.counts[paceMark+op]++
	}
	p.mu.Unlock()
	p.rp.ServeHTTP(w, r)
}

// countWriteItems counts the items a BatchWriteItem or TransactWriteItems
// body writes (0 when it cannot be read).
func countWriteItems(body []byte) int {
	var in struct {
		RequestItems  map[string][]json.RawMessage
		TransactItems []json.RawMessage
	}
	if json.Unmarshal(body, &in) != nil {
		return 0
	}
	n := len(in.TransactItems)
	for _, writes := range in.RequestItems {
		n += len(writes)
	}
	return n
}

func (p *countingProxy) snapshot() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.counts))
	for k, v := range p.counts {
		out[k] = v
	}
	return out
}

func diffCounts(after, before map[string]int) map[string]int {
	out := map[string]int{}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// jvmCPU finds the DynamoDB Local JVM listening on port and returns a
// function reading its CPU time so far (user + system), or nil.
func jvmCPU(port int) func() time.Duration {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	want := []byte("-port\x00" + strconv.Itoa(port) + "\x00")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte("DynamoDBLocal.jar")) || !bytes.Contains(cmd, want) {
			continue
		}
		stat := filepath.Join(d, "stat")
		return func() time.Duration {
			b, err := os.ReadFile(stat)
			if err != nil {
				return 0
			}
			// Fields after the command name (which may hold spaces).
			f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
			if len(f) < 13 {
				return 0
			}
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			return time.Duration(ut+st) * time.Second / 100 // USER_HZ is 100 on Linux
		}
	}
	return nil
}

// Machine describes where the numbers were measured.
type Machine struct {
	CPUs      int    `json:"cpus"`
	CPUModel  string `json:"cpuModel"`
	MemoryGiB string `json:"memoryGiB"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"goVersion"`
	OSArch    string `json:"osArch"`
}

func machine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), OSArch: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if kb := procStatusKB("/proc/meminfo", "MemTotal:"); kb > 0 {
		m.MemoryGiB = strconv.FormatFloat(float64(kb)/(1<<20), 'f', 1, 64)
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// loadAverage is the machine's 1-minute load average (0 if unknown).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func mb(b int64) float64 { return round(float64(b)/(1<<20), 1) }

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

// writeCost is the write requests and write units of the counts: 1 WCU per
// single-item write and per item of a BatchWriteItem, 2 per item of a
// TransactWriteItems (every item here is under 1 KB).
func writeCost(counts map[string]int) (requests, units int) {
	for op, c := range counts {
		switch op {
		case "PutItem", "UpdateItem", "DeleteItem":
			requests += c
			units += c
		case "BatchWriteItem", "TransactWriteItems":
			requests += c
		case "BatchWriteItem" + itemsSuffix:
			units += c
		case "TransactWriteItems" + itemsSuffix:
			units += 2 * c
		}
	}
	return requests, units
}

// requestsOnly drops the item, owner-record and rate-memory counts.
func requestsOnly(counts map[string]int) map[string]int {
	out := make(map[string]int, len(counts))
	for op, c := range counts {
		if !strings.HasSuffix(op, itemsSuffix) && !strings.HasPrefix(op, ownerMark) && !strings.HasPrefix(op, paceMark) {
			out[op] = c
		}
	}
	return out
}

// ownerWrites is the owner-record writes of the counts (each 1 WCU).
func ownerWrites(counts map[string]int) int {
	n := 0
	for op, c := range counts {
		if strings.HasPrefix(op, ownerMark) {
			n += c
		}
	}
	return n
}
