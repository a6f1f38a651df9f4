package main

import (
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// hist is a latency histogram with 100 µs buckets up to 60 s (larger values
// land in the last bucket, and max keeps the exact largest).
type hist struct {
	mu     sync.Mutex
	counts []uint32
	n      int64
	max    time.Duration
}

const histRes = 100 * time.Microsecond

func newHist() *hist { return &hist{counts: make([]uint32, int(60*time.Second/histRes)+1)} }

func (h *hist) add(d time.Duration) {
	if d < 0 {
		d = 0
	}
	i := int(d / histRes)
	if i >= len(h.counts) {
		i = len(h.counts) - 1
	}
	h.mu.Lock()
	h.counts[i]++
	h.n++
	if d > h.max {
		h.max = d
	}
	h.mu.Unlock()
}

// quantile returns the upper edge of the bucket holding quantile q, capped
// at the maximum seen.
func (h *hist) quantile(q float64) time.Duration {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	if rank < 1 {
		rank = 1
	}
	var seen int64
	for i, c := range h.counts {
		seen += int64(c)
		if seen >= rank {
			return min(time.Duration(i+1)*histRes, h.max)
		}
	}
	return h.max
}

// Latency is a set of percentiles in milliseconds.
type Latency struct {
	Samples int64   `json:"samples"`
	P50     float64 `json:"p50_ms"`
	P90     float64 `json:"p90_ms"`
	P99     float64 `json:"p99_ms"`
	P999    float64 `json:"p999_ms"`
	Max     float64 `json:"max_ms"`
}

func (h *hist) summary() Latency {
	ms := func(d time.Duration) float64 { return math.Round(float64(d)/float64(time.Millisecond)*10) / 10 }
	h.mu.Lock()
	n, mx := h.n, h.max
	h.mu.Unlock()
	return Latency{Samples: n, P50: ms(h.quantile(0.5)), P90: ms(h.quantile(0.9)), P99: ms(h.quantile(0.99)), P999: ms(h.quantile(0.999)), Max: ms(mx)}
}

// percentile of a sorted slice (nearest rank).
func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	i = max(0, min(i, len(sorted)-1))
	return sorted[i]
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	return percentile(s, 0.5)
}

// rssOf reads VmRSS of a process from /proc ("self" for this one), in bytes.
func rssOf(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// cpuWatch reads the CPU time (user + system) of named processes.
type cpuWatch struct {
	pids map[string]string // name -> pid ("self" for tapbench)
}

// parseCPUPids parses "name=pid,name=pid".
func parseCPUPids(spec string) (*cpuWatch, error) {
	w := &cpuWatch{pids: map[string]string{"generator": "self"}}
	for _, kv := range strings.Split(spec, ",") {
		if kv = strings.TrimSpace(kv); kv == "" {
			continue
		}
		name, pid, ok := strings.Cut(kv, "=")
		if !ok || name == "" || pid == "" {
			return nil, fmt.Errorf("-cpu-pids: %q is not name=pid", kv)
		}
		w.pids[name] = pid
	}
	return w, nil
}

func (w *cpuWatch) read() map[string]float64 {
	out := map[string]float64{}
	for name, pid := range w.pids {
		out[name] = cpuSeconds(pid)
	}
	return out
}

// since returns the CPU seconds used since before, per process, and per
// request in microseconds.
func (w *cpuWatch) since(before map[string]float64, requests int64) (map[string]float64, map[string]float64) {
	now := w.read()
	secs, per := map[string]float64{}, map[string]float64{}
	var total float64
	for name, v := range now {
		d := v - before[name]
		secs[name] = math.Round(d*100) / 100
		total += d
		if requests > 0 {
			per[name] = math.Round(d/float64(requests)*1e6*10) / 10
		}
	}
	if requests > 0 {
		per["total"] = math.Round(total/float64(requests)*1e6*10) / 10
	}
	return secs, per
}

// cpuSeconds reads utime+stime of a process from /proc/<pid>/stat.
func cpuSeconds(pid string) float64 {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ is 100 on Linux
}
