// Command tapbench is tapwars' load generator. It joins players over HTTP,
// taps at a fixed or maximal rate with keep-alive connections, follows the
// game with SSE and WebSocket live clients, and reports throughput, errors
// by status, freshness percentiles (a tap's 202 → a live client showing a
// totalTaps that includes it), memory, and whether the counts came out
// exact. Its result is one JSON line on stdout and a short summary on
// stderr.
//
//	go run ./cmd/tapbench -duration 10s                  # starts tapwars in-process (embedded, temp DATA_DIR)
//	go run ./cmd/tapbench -url http://127.0.0.1:8080 -rate 1000 -sse 500 -ws 500 [-format html]
//	go run ./cmd/tapbench -url http://127.0.0.1:8080 -baseline-url http://127.0.0.1:9999 -pairs 5
//	go run ./cmd/tapbench -mode ws -baseline -pairs 5               # every player taps over its own WebSocket
//	go run ./cmd/tapbench -noop-server 127.0.0.1:9999    # a do-nothing POST /api/tap (202) to compare with
//	go run ./cmd/tapbench -scoreboard-server 127.0.0.1:9998   # the bare scoreboard server, fan-out's ceiling (scoreboard.go)
//	go run ./cmd/tapbench -broker 127.0.0.1:9092 -data-dir /tmp/kfake   # a kfake broker as a process
//	go run ./cmd/tapbench -url ... -tokens-out tokens.txt -duration 0   # players for wrk (cmd/tapbench/wrk/tap.lua)
//
// Against a running server, start it with TAP_RATE_LIMIT=0 JOIN_RATE_LIMIT=0 JOINS_PER_SECOND=0
// MAX_CONNECTIONS=0 MAX_CONNECTIONS_PER_IP=0 MAX_TCP_CONNECTIONS_PER_IP=0: every player and live client
// comes from one address here. Exactness assumes no other traffic.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/embedded"
	"github.com/tapwars/tapwars/stream"
)

type options struct {
	url, metricsURL, baselineURL, noopAddr, scoreboardAddr, fanoutDir, brokerAddr, dataDir, tokensOut, serverPID, cpuPids, format, mode string
	players, workers, count, sse, ws, trackClients, pairs, partitions, window                                                           int
	rate                                                                                                                                float64
	duration, warmup, settle                                                                                                            time.Duration
	baseline, verifyPlayers                                                                                                             bool
	taps                                                                                                                                int64
}

func main() {
	var o options
	flag.StringVar(&o.url, "url", "", "base URL of a running tapwars; empty starts one in-process (embedded broker and store in a temp DATA_DIR, limits off)")
	flag.IntVar(&o.players, "players", 1000, "players to join")
	flag.StringVar(&o.mode, "mode", "http", "how players tap: http (POST /api/tap over -workers keep-alive connections) or ws (each player over its own WebSocket, the page's or with -format json the API's; acks awaited)")
	flag.IntVar(&o.window, "window", 4, "-mode ws at the maximal rate: tap messages of one socket that may await their ack (1: each waits for the last one's)")
	flag.IntVar(&o.workers, "workers", 64, "concurrent tap connections (keep-alive) of -mode http and of the do-nothing baseline")
	flag.Float64Var(&o.rate, "rate", 0, "tap requests per second in total; 0 = as fast as the server answers")
	flag.IntVar(&o.count, "count", 1, "taps per request (1 sends no body; 2..50 send {\"count\":n})")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each measured tap phase (0: only join, e.g. with -tokens-out)")
	flag.Int64Var(&o.taps, "taps", 0, "end the tap phase once this many taps were acknowledged (0: run for -duration)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "taps before measuring (counted in the exactness check, not in rates or freshness)")
	flag.IntVar(&o.sse, "sse", 0, "live SSE clients (GET /events, see -format)")
	flag.IntVar(&o.ws, "ws", 0, "live WebSocket clients (GET /ws, see -format)")
	flag.StringVar(&o.format, "format", "json", "what live clients receive: json (the game-state JSON, ?format=json) or html (the game page's fragments, as browsers get them)")
	flag.IntVar(&o.trackClients, "track", 200, "live clients (spread over SSE and WS) whose every state is kept for freshness percentiles")
	flag.BoolVar(&o.baseline, "baseline", false, "also run the same tap load against an in-process do-nothing handler, alternating, and report the ratio")
	flag.StringVar(&o.baselineURL, "baseline-url", "", "like -baseline, against a do-nothing server already running (tapbench -noop-server)")
	flag.IntVar(&o.pairs, "pairs", 1, "with a baseline: alternating (baseline, tapwars) phase pairs; the median ratio is reported")
	flag.DurationVar(&o.settle, "settle", 60*time.Second, "how long to wait for the counts to become exact after the last tap")
	flag.BoolVar(&o.verifyPlayers, "verify-players", true, "also check every player's tapCount (one request per player)")
	flag.StringVar(&o.serverPID, "server-pid", "", "pid of the server, to read its RSS from /proc (else -metrics-url's process_resident_memory_bytes)")
	flag.StringVar(&o.metricsURL, "metrics-url", "", "base URL of the server's METRICS_ADDR listener (e.g. http://127.0.0.1:9090), for its RSS without -server-pid")
	flag.StringVar(&o.cpuPids, "cpu-pids", "", "processes whose CPU time to report per phase, as name=pid,... (tapbench itself is always \"generator\"; -server-pid adds \"server\")")
	flag.StringVar(&o.tokensOut, "tokens-out", "", "write the joined players' tokens to this file, one a line (for wrk)")
	flag.StringVar(&o.noopAddr, "noop-server", "", "only serve a do-nothing POST /api/tap (202) on this address, until interrupted")
	flag.StringVar(&o.scoreboardAddr, "scoreboard-server", "", "only serve the bare scoreboard server on this address, until interrupted: the game in memory, tapwars' join, tap, game-state and live endpoints with its frames and pacing (the ceiling of fan-out)")
	flag.StringVar(&o.fanoutDir, "fanout-report", "", "only print the fan-out comparison of the runs in this directory (tapwars-N.json, bare-N.json: external.sh fanout writes them)")
	flag.StringVar(&o.brokerAddr, "broker", "", "only run a kfake Kafka broker on this address (host:port), until interrupted")
	flag.StringVar(&o.dataDir, "data-dir", "", "with -broker: its data directory (default: a temp dir)")
	flag.IntVar(&o.partitions, "partitions", 6, "with -broker: partitions of game-taps")
	cpuProfile := flag.String("cpuprofile", "", "write the generator's own CPU profile to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "tapbench:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch {
	case o.noopAddr != "":
		err = serveNoop(ctx, o.noopAddr)
	case o.scoreboardAddr != "":
		err = serveScoreboard(ctx, o.scoreboardAddr)
	case o.fanoutDir != "":
		err = fanoutReport(os.Stdout, o.fanoutDir)
	case o.brokerAddr != "":
		err = runBroker(ctx, o)
	default:
		err = bench(ctx, o)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tapbench:", err)
		os.Exit(1)
	}
}

// Baseline compares ingest with the do-nothing server's, pair by pair.
type Baseline struct {
	NoopReqRate float64   `json:"noop_requests_per_s"`
	Ratios      []float64 `json:"ratios"`
	Ratio       float64   `json:"ratio_median"`
	// -mode ws: the do-nothing server's sockets against its HTTP handler,
	// the most any server of the socket contract could reach.
	WSCeilings []float64 `json:"noop_ws_ratios,omitempty"`
	WSCeiling  float64   `json:"noop_ws_ratio_median,omitempty"`
}

// noopHandler is the do-nothing Go handler ingest is compared with.
func noopHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			noopSocket(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/api/tap" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"success":true}`))
	})
}

func startNoop(addr string) (*http.Server, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", err
	}
	srv := &http.Server{Handler: noopHandler(), ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 90 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, "http://" + ln.Addr().String(), nil
}

func serveNoop(ctx context.Context, addr string) error {
	srv, u, err := startNoop(addr)
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "tapbench: do-nothing POST /api/tap on", u)
	<-ctx.Done()
	return srv.Close()
}

func runBroker(ctx context.Context, o options) error {
	host, port, err := net.SplitHostPort(o.brokerAddr)
	if err != nil {
		return fmt.Errorf("-broker %q: %w", o.brokerAddr, err)
	}
	if host != "" && host != "127.0.0.1" && host != "localhost" {
		return errors.New("-broker: kfake listens on 127.0.0.1 only")
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("-broker port: %w", err)
	}
	dir := o.dataDir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "tapbench-kfake-"); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	k, err := embedded.StartKafka(embedded.KafkaOptions{Dir: dir, Partitions: int32(o.partitions), Topics: []string{stream.Topic}, Port: p, Logger: log})
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "tapbench: kfake broker on", strings.Join(k.Addrs(), ","), "data in", dir)
	<-ctx.Done()
	return k.Close()
}

// Result is the JSON line.
type Result struct {
	Date     string  `json:"date"`
	Machine  string  `json:"machine"`
	Target   string  `json:"target"`
	Mode     string  `json:"mode"` // how players tapped: http or ws
	Players  int     `json:"players"`
	Workers  int     `json:"workers"`
	Rate     float64 `json:"rate_target"`
	Count    int     `json:"taps_per_request"`
	Duration float64 `json:"phase_seconds"`

	TapRate    float64          `json:"taps_per_s"`
	ReqRate    float64          `json:"requests_per_s"`
	Errors     map[string]int64 `json:"errors_by_status"`
	TapLatency Latency          `json:"tap_latency"`
	Phases     []phase          `json:"phases"`

	Baseline *Baseline `json:"baseline,omitempty"`

	Live *LiveResult `json:"live,omitempty"`

	Memory struct {
		ClientRSS       int64  `json:"client_rss_bytes"`
		ClientHeapInuse uint64 `json:"client_heap_inuse_bytes"`
		ServerRSSBefore int64  `json:"server_rss_before_live_bytes"`
		ServerRSSLive   int64  `json:"server_rss_with_live_bytes"`
		ServerRSSEnd    int64  `json:"server_rss_end_bytes"`
		ServerPerClient int64  `json:"server_bytes_per_live_client,omitempty"`
		ServerSource    string `json:"server_rss_source"`
	} `json:"memory"`

	Verify struct {
		StartTotal     int64   `json:"start_total"`
		AckedTaps      int64   `json:"acked_taps"`
		MaybeTaps      int64   `json:"unanswered_taps"`
		Expected       int64   `json:"expected_total"`
		Final          int64   `json:"final_total"`
		Exact          bool    `json:"exact"`
		SettleMS       float64 `json:"settle_ms"`
		PlayersChecked int     `json:"players_checked"`
		PlayersWrong   int     `json:"players_wrong"`
	} `json:"verify"`
}

type LiveResult struct {
	Clients        int     `json:"clients"`
	Format         string  `json:"format"`
	SSEClients     int     `json:"sse"`
	WSClients      int     `json:"ws"`
	ConnectErrors  int     `json:"connect_errors"`
	ConnectSeconds float64 `json:"connect_seconds"`
	Dropped        int     `json:"dropped_during_run"`
	FirstError     string  `json:"first_error,omitempty"`
	UpdatesMin     float64 `json:"updates_per_s_min"`
	UpdatesP1      float64 `json:"updates_per_s_p1"`
	UpdatesP10     float64 `json:"updates_per_s_p10"`
	UpdatesP50     float64 `json:"updates_per_s_p50"`
	AtLeast5       float64 `json:"share_with_5_per_s_or_more"`
	MiBps          float64 `json:"received_mib_per_s"`
	Freshness      Latency `json:"freshness"`
	Tracked        int     `json:"tracked_clients"`
	Unseen         int     `json:"unseen_acks"`
	SawFinal       int     `json:"clients_that_saw_final_total"`
}

func bench(ctx context.Context, o options) error {
	if o.players < 1 || o.workers < 1 || o.count < 1 || o.count > 50 {
		return errors.New("-players and -workers must be >= 1, -count 1..50")
	}
	if o.format != "json" && o.format != "html" {
		return errors.New("-format must be json or html")
	}
	if o.mode != "http" && o.mode != "ws" {
		return errors.New("-mode must be http or ws")
	}
	res := &Result{Date: time.Now().UTC().Format(time.RFC3339), Players: o.players, Workers: o.workers, Rate: o.rate, Count: o.count, Duration: o.duration.Seconds()}
	res.Machine = fmt.Sprintf("%d CPUs, %s, %s/%s", runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	base := strings.TrimRight(o.url, "/")
	inProcess := base == ""
	if inProcess {
		m, dir, err := startInProcess(ctx)
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		defer m.Close()
		base = m.URL()
		res.Target = base + " (in-process app.Main, embedded broker and store)"
		fmt.Fprintln(os.Stderr, "tapbench: started tapwars in-process at", base, "data in", dir)
	} else {
		res.Target = base
	}
	serverRSS := func() int64 {
		switch {
		case inProcess:
			res.Memory.ServerSource = "in-process: RSS of this process (server and generator together)"
			return rssOf("self")
		case o.serverPID != "":
			res.Memory.ServerSource = "/proc/" + o.serverPID + "/status VmRSS"
			return rssOf(o.serverPID)
		}
		if o.metricsURL == "" {
			res.Memory.ServerSource = "unknown: give -server-pid or -metrics-url"
			return 0
		}
		res.Memory.ServerSource = "/metrics process_resident_memory_bytes"
		return metricsRSS(strings.TrimRight(o.metricsURL, "/"))
	}

	tapHC := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		MaxIdleConns: o.workers * 2, MaxIdleConnsPerHost: o.workers * 2, IdleConnTimeout: 90 * time.Second, DisableCompression: true}}
	players, _, err := join(ctx, tapHC, base, o.players, fmt.Sprintf("tb%04x-", time.Now().UnixNano()&0xffff))
	if err != nil {
		return err
	}
	if o.tokensOut != "" {
		var sb strings.Builder
		for _, p := range players {
			sb.WriteString(p.Token + "\n")
		}
		if err := os.WriteFile(o.tokensOut, []byte(sb.String()), 0o600); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "tapbench: %d tokens written to %s\n", len(players), o.tokensOut)
	}
	if o.duration <= 0 {
		return nil
	}

	epoch := time.Now()
	cw, err := parseCPUPids(o.cpuPids)
	if err != nil {
		return err
	}
	if o.serverPID != "" {
		cw.pids["server"] = o.serverPID
	}
	if inProcess { // server and generator share this process
		delete(cw.pids, "generator")
		cw.pids["in-process"] = "self"
	}
	t := &tapper{limit: o.taps, cpu: cw, hc: tapHC, players: players, count: o.count, epoch: epoch, byPlayer: make([]int64, len(players)), status: map[string]int64{}, lat: newHist()}

	// Live clients.
	res.Memory.ServerRSSBefore = serverRSS()
	var measuring atomic.Bool
	liveCtx, stopLive := context.WithCancel(context.Background())
	defer stopLive()
	var clients []*liveClient
	var liveWG sync.WaitGroup
	if o.sse+o.ws > 0 {
		lr, cl, err := openLive(liveCtx, &liveWG, base, o, epoch, &measuring)
		if err != nil {
			return err
		}
		res.Live, clients = lr, cl
		time.Sleep(time.Second) // let the server settle its per-connection memory
		res.Memory.ServerRSSLive = serverRSS()
		if n := lr.Clients - lr.ConnectErrors; n > 0 && res.Memory.ServerRSSBefore > 0 {
			res.Memory.ServerPerClient = (res.Memory.ServerRSSLive - res.Memory.ServerRSSBefore) / int64(n)
		}
	}

	// The starting total, once nothing moves any more.
	start, err := stableTotal(tapHC, base)
	if err != nil {
		return err
	}
	res.Verify.StartTotal = start

	// One phase of taps against tapwars, over HTTP or the players' sockets.
	tapPhase := func(d time.Duration) phase {
		return t.run(ctx, base+"/api/tap", d, o.workers, o.rate, true, "tapwars")
	}
	var ws *wsTaps
	if o.mode == "ws" {
		if ws, err = openTapSockets(ctx, t, base, o.format); err != nil {
			return err
		}
		defer ws.close()
		tapPhase = func(d time.Duration) phase { return ws.run(ctx, d, o.rate, max(1, o.window), "tapwars") }
		res.Mode = "ws"
	} else {
		res.Mode = "http"
	}

	// Warm-up: counted for exactness, not measured.
	if o.warmup > 0 {
		tapPhase(o.warmup)
	}
	t.mu.Lock()
	warmAcks := len(t.acks)
	t.mu.Unlock()

	baseURL := strings.TrimRight(o.baselineURL, "/")
	if o.baseline && baseURL == "" {
		srv, u, err := startNoop("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer srv.Close()
		baseURL = u
	}
	if baseURL != "" && o.rate > 0 {
		fmt.Fprintln(os.Stderr, "tapbench: warning: a baseline ratio means little at a fixed -rate; use -rate 0")
	}
	var tapSecs, noopRates []float64
	var ratios, ceilings []float64
	// With -mode ws, the do-nothing server's sockets (one ack per message,
	// nothing else) show the most any server of the contract could reach.
	var noopWS *wsTaps
	if ws != nil && baseURL != "" {
		if noopWS, err = openTapSockets(ctx, t, baseURL, "json"); err != nil {
			return err
		}
		noopWS.noop = true
		defer noopWS.close()
	}
	var okReq int64
	res.Errors = map[string]int64{}
	var liveSecs float64
	for i := 0; i < max(1, o.pairs) && ctx.Err() == nil; i++ {
		var noop phase
		if baseURL != "" {
			noop = t.run(ctx, baseURL+"/api/tap", o.duration, o.workers, o.rate, false, "noop")
			res.Phases = append(res.Phases, noop)
			noopRates = append(noopRates, noop.ReqRate)
		}
		measuring.Store(true)
		ph := tapPhase(o.duration)
		measuring.Store(false)
		liveSecs += ph.Seconds
		res.Phases = append(res.Phases, ph)
		tapSecs = append(tapSecs, ph.Seconds)
		okReq += ph.Requests
		for k, v := range ph.Errors {
			res.Errors[k] += v
		}
		if baseURL != "" && noop.ReqRate > 0 {
			ratios = append(ratios, ph.ReqRate/noop.ReqRate)
		}
		if noopWS != nil && noop.ReqRate > 0 {
			nw := noopWS.run(ctx, o.duration, o.rate, max(1, o.window), "noop-ws")
			res.Phases = append(res.Phases, nw)
			ceilings = append(ceilings, nw.ReqRate/noop.ReqRate)
		}
		if baseURL == "" {
			break
		}
	}
	var secs float64
	for _, s := range tapSecs {
		secs += s
	}
	res.ReqRate = float64(okReq) / secs
	res.TapRate = res.ReqRate * float64(o.count)
	res.TapLatency = t.lat.summary()
	if len(ratios) > 0 {
		res.Baseline = &Baseline{NoopReqRate: median(noopRates), Ratios: roundAll(ratios), Ratio: round3(median(ratios)),
			WSCeilings: roundAll(ceilings), WSCeiling: round3(median(ceilings))}
	}

	// Exactness: wait until the server counted exactly what it acknowledged.
	if ws != nil {
		ws.giveUp()
	}
	t.mu.Lock()
	acked, maybe := t.acked, t.maybe
	acks := append([]ack(nil), t.acks...)
	t.mu.Unlock()
	res.Verify.AckedTaps, res.Verify.MaybeTaps = acked, maybe
	res.Verify.Expected = start + acked
	stopAt := time.Now()
	deadline := stopAt.Add(o.settle)
	for {
		n, err := totalTaps(tapHC, base)
		if err == nil {
			res.Verify.Final = n
			if n == res.Verify.Expected || (maybe > 0 && n > res.Verify.Expected+maybe) {
				break
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	res.Verify.SettleMS = float64(time.Since(stopAt).Milliseconds())
	res.Verify.Exact = res.Verify.Final == res.Verify.Expected
	if o.verifyPlayers && res.Verify.Exact {
		for i, p := range players {
			n, err := tapCount(tapHC, base, p)
			res.Verify.PlayersChecked++
			if err != nil || n != p.Start+t.byPlayer[i] {
				res.Verify.PlayersWrong++
			}
		}
		res.Verify.Exact = res.Verify.PlayersWrong == 0
	}

	// Live results: let every client see the final total, then compute.
	if res.Live != nil {
		final := res.Verify.Final
		wait := time.Now().Add(5 * time.Second)
		for time.Now().Before(wait) {
			all := true
			for _, c := range clients {
				if c.last.Load() < final && c.firstErr.Load() == nil {
					all = false
					break
				}
			}
			if all {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		res.Memory.ServerRSSEnd = serverRSS()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		res.Memory.ClientHeapInuse = ms.HeapInuse
		res.Memory.ClientRSS = rssOf("self")
		summarizeLive(res.Live, clients, acks[warmAcks:], start, liveSecs, final)
		stopLive()
		liveWG.Wait()
	} else {
		res.Memory.ServerRSSEnd = serverRSS()
		res.Memory.ClientRSS = rssOf("self")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		res.Memory.ClientHeapInuse = ms.HeapInuse
	}

	line, _ := json.Marshal(res)
	fmt.Println(string(line))
	printSummary(os.Stderr, res)
	if !res.Verify.Exact {
		return fmt.Errorf("counts are not exact: expected %d, server has %d (%d players wrong)", res.Verify.Expected, res.Verify.Final, res.Verify.PlayersWrong)
	}
	return nil
}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func roundAll(xs []float64) []float64 {
	out := make([]float64, len(xs))
	for i, x := range xs {
		out[i] = round3(x)
	}
	return out
}

// stableTotal returns totalTaps once two reads 300 ms apart agree.
func stableTotal(hc *http.Client, base string) (int64, error) {
	prev := int64(-1)
	for range 100 {
		n, err := totalTaps(hc, base)
		if err != nil {
			return 0, fmt.Errorf("game state: %w", err)
		}
		if n == prev {
			return n, nil
		}
		prev = n
		time.Sleep(300 * time.Millisecond)
	}
	return 0, errors.New("the total never settled: is something else tapping?")
}

func openLive(ctx context.Context, wg *sync.WaitGroup, base string, o options, epoch time.Time, measuring *atomic.Bool) (*LiveResult, []*liveClient, error) {
	n := o.sse + o.ws
	lr := &LiveResult{Clients: n, SSEClients: o.sse, WSClients: o.ws, Format: o.format}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true, WriteBufferSize: 1024, ReadBufferSize: 4096}}
	clients := make([]*liveClient, n)
	every := max(1, n/max(1, o.trackClients))
	// Interleave the kinds so that tracked clients cover both.
	kinds := make([]string, 0, n)
	for s, w := o.sse, o.ws; s > 0 || w > 0; {
		if s > 0 {
			kinds, s = append(kinds, "sse"), s-1
		}
		if w > 0 {
			kinds, w = append(kinds, "ws"), w-1
		}
	}
	for i := range clients {
		c := &liveClient{kind: kinds[i], track: i%every == 0}
		c.last.Store(-1)
		clients[i] = c
	}
	start := time.Now()
	var errs atomic.Int64
	sem := make(chan struct{}, 64)
	var cwg sync.WaitGroup
	for _, c := range clients {
		sem <- struct{}{}
		cwg.Add(1)
		wg.Add(1)
		connected := func(err error) {
			if err != nil {
				errs.Add(1)
			}
			<-sem
			cwg.Done()
		}
		go func() {
			defer wg.Done()
			if c.kind == "sse" {
				c.runSSE(ctx, hc, base, o.format, epoch, measuring, connected)
			} else {
				c.runWS(ctx, hc, base, o.format, epoch, measuring, connected)
			}
		}()
	}
	cwg.Wait()
	// Every connected client has its first state.
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		waiting := 0
		for _, c := range clients {
			if c.last.Load() < 0 && c.firstErr.Load() == nil {
				waiting++
			}
		}
		if waiting == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	lr.ConnectSeconds = math.Round(time.Since(start).Seconds()*100) / 100
	lr.ConnectErrors = int(errs.Load())
	for _, c := range clients {
		if e, ok := c.firstErr.Load().(string); ok {
			lr.FirstError = e
			break
		}
	}
	if lr.ConnectErrors == n {
		return nil, nil, fmt.Errorf("no live client could connect: %s", lr.FirstError)
	}
	fmt.Fprintf(os.Stderr, "tapbench: %d live clients connected in %.1fs (%d failed)\n", n-lr.ConnectErrors, lr.ConnectSeconds, lr.ConnectErrors)
	return lr, clients, nil
}

func summarizeLive(lr *LiveResult, clients []*liveClient, acks []ack, start int64, secs float64, final int64) {
	h := newHist()
	var rates []float64
	var bytes int64
	for _, c := range clients {
		if e, ok := c.firstErr.Load().(string); ok {
			if c.states.Load() > 0 {
				lr.Dropped++
				if lr.FirstError == "" {
					lr.FirstError = e
				}
			}
			continue
		}
		bytes += c.bytes.Load()
		rates = append(rates, float64(c.window.Load())/secs)
		if c.last.Load() >= final {
			lr.SawFinal++
		}
		if c.track {
			lr.Tracked++
			lr.Unseen += c.freshness(acks, start, h)
		}
	}
	sort.Float64s(rates)
	if len(rates) > 0 {
		lr.UpdatesMin = round3(rates[0])
		lr.UpdatesP1 = round3(percentile(rates, 0.01))
		lr.UpdatesP10 = round3(percentile(rates, 0.1))
		lr.UpdatesP50 = round3(percentile(rates, 0.5))
		ge := 0
		for _, r := range rates {
			if r >= 5 {
				ge++
			}
		}
		lr.AtLeast5 = round3(float64(ge) / float64(len(rates)))
	}
	lr.MiBps = round3(float64(bytes) / (1 << 20) / secs)
	lr.Freshness = h.summary()
}

// metricsRSS reads process_resident_memory_bytes from the server's /metrics.
func metricsRSS(base string) int64 {
	res, err := http.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "process_resident_memory_bytes "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return int64(f)
		}
	}
	return 0
}

// startInProcess runs tapwars through app.Main on the embedded defaults in
// a temp DATA_DIR, with every limit off (one address plays every player).
// Other settings come from the environment as usual.
func startInProcess(ctx context.Context) (*app.Main, string, error) {
	dir, err := os.MkdirTemp("", "tapbench-")
	if err != nil {
		return nil, "", err
	}
	vars := map[string]string{
		"ADDR": "127.0.0.1:0", "DATA_DIR": filepath.Join(dir, "data"), "LOG_LEVEL": "warn",
		"TAP_RATE_LIMIT": "0", "JOIN_RATE_LIMIT": "0", "JOINS_PER_SECOND": "0", "MAX_CONNECTIONS": "0", "MAX_CONNECTIONS_PER_IP": "0",
		"MAX_TCP_CONNECTIONS_PER_IP": "0", "METRICS_ADDR": "127.0.0.1:0",
	}
	m := app.NewMain()
	getenv := func(k string) string {
		if v := os.Getenv(k); v != "" && k != "ADDR" && k != "DATA_DIR" {
			return v
		}
		return vars[k]
	}
	if err := m.Config.Parse(nil, getenv, io.Discard); err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	if err := m.Run(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, "", err
	}
	return m, dir, nil
}

func printSummary(w io.Writer, r *Result) {
	conns := fmt.Sprintf("%d workers", r.Workers)
	if r.Mode == "ws" {
		conns = fmt.Sprintf("a WebSocket each (baseline: %d workers)", r.Workers)
	}
	fmt.Fprintf(w, "\ntapbench against %s — %d players, %s, rate %s, %d tap(s)/request (%s)\n", r.Target, r.Players, conns, rateStr(r.Rate), r.Count, r.Mode)
	fmt.Fprintf(w, "  ingest     %.0f taps/s (%.0f req/s), latency p50 %.1f ms p99 %.1f ms, errors %v\n", r.TapRate, r.ReqRate, r.TapLatency.P50, r.TapLatency.P99, r.Errors)
	if b := r.Baseline; b != nil {
		fmt.Fprintf(w, "  baseline   do-nothing handler %.0f req/s; ratio %.3f (median of %v)\n", b.NoopReqRate, b.Ratio, b.Ratios)
		if len(b.WSCeilings) > 0 {
			fmt.Fprintf(w, "  ceiling    do-nothing WebSocket (an ack per message, nothing else) / do-nothing handler: %.3f (median of %v)\n", b.WSCeiling, b.WSCeilings)
		}
	}
	for _, target := range []string{"tapwars", "noop"} {
		cpu := map[string]float64{}
		var reqs int64
		for _, ph := range r.Phases {
			if ph.Target == target {
				reqs += ph.Requests
				for k, v := range ph.CPU {
					cpu[k] += v
				}
			}
		}
		if reqs == 0 || len(cpu) == 0 {
			continue
		}
		names := make([]string, 0, len(cpu))
		var total float64
		for k, v := range cpu {
			names = append(names, k)
			total += v
		}
		sort.Strings(names)
		fmt.Fprintf(w, "  cpu        %-7s µs/request:", target)
		for _, k := range names {
			fmt.Fprintf(w, " %s %.1f", k, cpu[k]/float64(reqs)*1e6)
		}
		fmt.Fprintf(w, " = %.1f\n", total/float64(reqs)*1e6)
	}
	if l := r.Live; l != nil {
		fmt.Fprintf(w, "  live       %d %s clients (%d SSE, %d WS), %d connect errors, %d dropped; updates/s min %.1f p1 %.1f p10 %.1f p50 %.1f; %.0f%% got >= 5/s; %.1f MiB/s\n",
			l.Clients, l.Format, l.SSEClients, l.WSClients, l.ConnectErrors, l.Dropped, l.UpdatesMin, l.UpdatesP1, l.UpdatesP10, l.UpdatesP50, l.AtLeast5*100, l.MiBps)
		fmt.Fprintf(w, "  freshness  p50 %.1f ms p90 %.1f ms p99 %.1f ms p99.9 %.1f ms max %.1f ms (%d samples over %d tracked clients, %d unseen)\n",
			l.Freshness.P50, l.Freshness.P90, l.Freshness.P99, l.Freshness.P999, l.Freshness.Max, l.Freshness.Samples, l.Tracked, l.Unseen)
	}
	m := r.Memory
	if r.Live != nil {
		fmt.Fprintf(w, "  memory     server RSS %s before live, %s with live, %s at end", mib(m.ServerRSSBefore), mib(m.ServerRSSLive), mib(m.ServerRSSEnd))
	} else {
		fmt.Fprintf(w, "  memory     server RSS %s before, %s at end", mib(m.ServerRSSBefore), mib(m.ServerRSSEnd))
	}
	if m.ServerPerClient > 0 {
		fmt.Fprintf(w, " (%.1f KiB per live client)", float64(m.ServerPerClient)/1024)
	}
	fmt.Fprintf(w, "; generator RSS %s\n", mib(m.ClientRSS))
	v := r.Verify
	fmt.Fprintf(w, "  exact      %v: start %d + acknowledged %d = %d, server %d after %.0f ms; %d players checked, %d wrong\n",
		v.Exact, v.StartTotal, v.AckedTaps, v.Expected, v.Final, v.SettleMS, v.PlayersChecked, v.PlayersWrong)
}

func rateStr(r float64) string {
	if r <= 0 {
		return "max"
	}
	return strconv.FormatFloat(r, 'f', -1, 64) + "/s"
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
