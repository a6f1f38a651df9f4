package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type player struct {
	ID    string
	Token string
	Start int64 // tapCount when joined
}

type ack struct {
	at  int64 // ns since the run's epoch
	cum int64 // taps of this run acknowledged so far, this one included
}

// tapper sends taps and records what was acknowledged.
type tapper struct {
	hc      *http.Client
	players []player
	count   int
	epoch   time.Time

	mu       sync.Mutex
	acked    int64   // taps acknowledged (202) by the real server
	acks     []ack   // in cum order
	byPlayer []int64 // taps acknowledged per player
	maybe    int64   // taps sent without a clear answer: they may still count
	status   map[string]int64
	lat      *hist
	cpu      *cpuWatch
	limit    int64 // stop recording phases once this many taps were acknowledged (0: no limit)
}

// phase is one stretch of load against one URL.
type phase struct {
	Target   string           `json:"target"` // "tapwars" or "noop"
	Seconds  float64          `json:"seconds"`
	Requests int64            `json:"requests_ok"`
	ReqRate  float64          `json:"req_per_s"`
	TapRate  float64          `json:"taps_per_s"`
	Errors   map[string]int64 `json:"errors,omitempty"`
	// CPU seconds each watched process used during the phase (see
	// -cpu-pids; "generator" is tapbench itself), and per request in µs.
	CPU       map[string]float64 `json:"cpu_s,omitempty"`
	CPUPerReq map[string]float64 `json:"cpu_us_per_req,omitempty"`
}

// run sends taps to url for d with workers concurrent keep-alive
// connections, at rate requests per second in total (0: as fast as
// possible). With record set, acknowledgements are recorded.
func (t *tapper) run(ctx context.Context, url string, d time.Duration, workers int, rate float64, record bool, target string) phase {
	var body []byte
	if t.count > 1 {
		body = []byte(`{"count":` + strconv.Itoa(t.count) + `}`)
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var ok atomic.Int64
	errs := map[string]int64{}
	var emu sync.Mutex
	var wg sync.WaitGroup
	var cpu0 map[string]float64
	if t.cpu != nil {
		cpu0 = t.cpu.read()
	}
	start := time.Now()
	var interval time.Duration
	if rate > 0 {
		interval = time.Duration(float64(workers) / rate * float64(time.Second))
	}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := start
			if interval > 0 {
				next = start.Add(interval * time.Duration(w) / time.Duration(workers))
			}
			for i := w; ; i += workers {
				if interval > 0 {
					if !sleepUntil(ctx, next) {
						return
					}
					next = next.Add(interval)
				}
				if ctx.Err() != nil {
					return
				}
				pi := i % len(t.players)
				p := t.players[pi]
				var rd io.Reader
				if body != nil {
					rd = bytes.NewReader(body)
				}
				// Requests are not tied to ctx: one in flight when the
				// phase ends finishes, so its answer is known.
				req, _ := http.NewRequest(http.MethodPost, url, rd)
				req.Header.Set("Authorization", "Bearer "+p.Token)
				if body != nil {
					req.Header.Set("Content-Type", "application/json")
				}
				sent := time.Now()
				res, err := t.hc.Do(req)
				if err != nil {
					key := "transport: " + errKind(err)
					emu.Lock()
					errs[key]++
					emu.Unlock()
					if record {
						t.mu.Lock()
						t.maybe += int64(t.count)
						t.mu.Unlock()
					}
					continue
				}
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				now := time.Now()
				if res.StatusCode/100 != 2 {
					emu.Lock()
					errs[strconv.Itoa(res.StatusCode)]++
					emu.Unlock()
					if record && res.StatusCode >= 500 {
						t.mayCount()
					}
					continue
				}
				ok.Add(1)
				if record && t.acknowledged(pi, t.count, now, now.Sub(sent)) {
					cancel()
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	ph := phase{Target: target, Seconds: el.Seconds(), Requests: ok.Load(), Errors: errs}
	if t.cpu != nil {
		ph.CPU, ph.CPUPerReq = t.cpu.since(cpu0, ph.Requests)
	}
	ph.ReqRate = float64(ph.Requests) / el.Seconds()
	ph.TapRate = ph.ReqRate * float64(t.count)
	if len(errs) == 0 {
		ph.Errors = nil
	}
	return ph
}

func errKind(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return oe.Op + " " + oe.Err.Error()
	}
	return err.Error()
}

// join makes n players with parallel POST /api/join.
func join(ctx context.Context, hc *http.Client, base string, n int, prefix string) ([]player, map[string]int64, error) {
	players := make([]player, n)
	errs := map[string]int64{}
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				res, err := hc.Post(base+"/api/join", "application/json", bytes.NewBufferString(fmt.Sprintf(`{"username":"%s%d"}`, prefix, i)))
				if err != nil {
					mu.Lock()
					errs["transport: "+errKind(err)]++
					mu.Unlock()
					continue
				}
				var j struct {
					User struct {
						ID       string `json:"id"`
						TapCount int64  `json:"tapCount"`
					} `json:"user"`
					Token string `json:"token"`
				}
				err = json.NewDecoder(res.Body).Decode(&j)
				_ = res.Body.Close()
				if res.StatusCode != http.StatusCreated || err != nil || j.Token == "" {
					mu.Lock()
					errs[strconv.Itoa(res.StatusCode)]++
					mu.Unlock()
					continue
				}
				players[i] = player{ID: j.User.ID, Token: j.Token, Start: j.User.TapCount}
			}
		}()
	}
	wg.Wait()
	var bad int64
	for _, e := range errs {
		bad += e
	}
	if bad > 0 {
		return nil, errs, fmt.Errorf("%d of %d joins failed %v (are JOIN_RATE_LIMIT=0 and JOINS_PER_SECOND=0 set on the server?)", bad, n, errs)
	}
	return players, nil, nil
}

// tapCount asks the server for a player's current taps (POST /api/join with
// the token answers 200 with the same player).
func tapCount(hc *http.Client, base string, p player) (int64, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/api/join", bytes.NewBufferString(`{}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.Token)
	res, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var j struct {
		User struct {
			TapCount int64 `json:"tapCount"`
		} `json:"user"`
	}
	if err := json.NewDecoder(res.Body).Decode(&j); err != nil || res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("rejoin: %d %v", res.StatusCode, err)
	}
	return j.User.TapCount, nil
}

// totalTaps reads /api/game-state's totalTaps.
func totalTaps(hc *http.Client, base string) (int64, error) {
	res, err := hc.Get(base + "/api/game-state?limit=1")
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	var s struct {
		GameState struct {
			TotalTaps int64 `json:"totalTaps"`
		} `json:"gameState"`
	}
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		return 0, err
	}
	return s.GameState.TotalTaps, nil
}

// sleepUntil waits until t, and reports false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	wait := time.Until(t)
	if wait <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(wait):
		return true
	}
}

// mayCount records a tap refused with a 5xx: after a timeout, Kafka may
// still have written it.
func (t *tapper) mayCount() {
	t.mu.Lock()
	t.maybe += int64(t.count)
	t.mu.Unlock()
}

// acknowledged records n taps of player pi acknowledged at now, latency
// after they were sent, and reports whether -taps is reached.
func (t *tapper) acknowledged(pi, n int, now time.Time, latency time.Duration) (done bool) {
	t.lat.add(latency)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.acked += int64(n)
	t.byPlayer[pi] += int64(n)
	t.acks = append(t.acks, ack{at: now.Sub(t.epoch).Nanoseconds(), cum: t.acked})
	return t.limit > 0 && t.acked >= t.limit
}
