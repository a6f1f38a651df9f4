package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The report pairs the runs and takes the ratios tapwars / bare pair by
// pair; a failed run shows why and leaves its pair out of the ratios.
func TestFanoutReport(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, updates, p10, p99 float64) {
		r := Result{Players: 1000, Rate: 1000, Duration: 10, TapRate: 999, Live: &LiveResult{Clients: 2000, Format: "html", SSEClients: 1000, WSClients: 1000,
			UpdatesP50: updates, UpdatesP10: p10, Freshness: Latency{P99: p99}}}
		r.Phases = []phase{{Seconds: 10, CPU: map[string]float64{"server": 5, "broker": 2, "generator": 9}}}
		r.Memory.ServerPerClient = 16 << 10
		r.Verify.Exact = true
		b, _ := json.Marshal(r)
		if err := os.WriteFile(filepath.Join(dir, name), append(b, '\n'), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("bare-1.json", 10, 8, 100)
	write("tapwars-1.json", 9, 6, 200)
	write("bare-2.json", 10, 10, 100)
	write("tapwars-2.json", 8, 8, 150)
	write("bare-3.json", 10, 10, 100)
	if err := os.WriteFile(filepath.Join(dir, "tapwars-3.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := fanoutReport(&out, dir); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"2000 html clients (1000 SSE, 1000 WS), 1000 players, taps 1000/s, 10 s phases",
		"3     tapwars  " + dir + "/tapwars-3.json: no result",
		"med   tapwars          8.00     6.00         150.0      999        16.0",
		"50%       70%",
		"tapwars / bare (median of 2 pairs): updates/s p50 0.800 [0.9 0.8], p10 0.750 [0.75 0.8]; freshness p99 1.500 [2 1.5]",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("report lacks %q:\n%s", want, s)
		}
	}
}
