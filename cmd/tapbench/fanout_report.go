package main

// -fanout-report DIR: the table external.sh fanout prints from the runs it
// made, tapwars and the bare scoreboard server alternately: each run's
// result line in DIR/tapwars-N.json and DIR/bare-N.json (pair N).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// fanoutRun is one run's figures.
type fanoutRun struct {
	pair      int
	target    string // "tapwars" or "bare"
	res       *Result
	err       string  // why there is no result
	cpuServer float64 // CPU seconds of the server process in the measured phases
	cpuStack  float64 // ... and of every other watched process but the generator (tapwars: broker, redis)
}

var runName = regexp.MustCompile(`^(tapwars|bare)-(\d+)\.json$`)

// readFanoutRuns reads the runs in dir, by pair, bare first.
func readFanoutRuns(dir string) ([]fanoutRun, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var runs []fanoutRun
	for _, e := range ents {
		m := runName.FindStringSubmatch(e.Name())
		if m == nil {
			continue
		}
		r := fanoutRun{target: m[1]}
		r.pair, _ = strconv.Atoi(m[2])
		r.res, err = readResult(filepath.Join(dir, e.Name()))
		if err != nil {
			r.err = err.Error()
		} else {
			for _, ph := range r.res.Phases {
				for name, secs := range ph.CPU {
					if name == "server" {
						r.cpuServer += secs
					}
					if name != "generator" {
						r.cpuStack += secs
					}
				}
			}
		}
		runs = append(runs, r)
	}
	sort.Slice(runs, func(i, j int) bool {
		if runs[i].pair != runs[j].pair {
			return runs[i].pair < runs[j].pair
		}
		return runs[i].target < runs[j].target
	})
	return runs, nil
}

// readResult reads the result line of one run (its stdout).
func readResult(path string) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for sc.Scan() {
		if line := sc.Bytes(); len(line) > 0 && line[0] == '{' {
			var r Result
			if err := json.Unmarshal(line, &r); err != nil {
				return nil, err
			}
			if r.Live == nil {
				return nil, fmt.Errorf("%s: no live clients in this run", path)
			}
			return &r, nil
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("%s: no result (the run failed; see its .log)", path)
}

// printFanoutReport prints every run, the medians per server and the
// ratios tapwars / bare, pair by pair and their median.
func printFanoutReport(w io.Writer, runs []fanoutRun) {
	var first *Result
	for _, r := range runs {
		if r.res != nil {
			first = r.res
			break
		}
	}
	if first == nil {
		fmt.Fprintln(w, "fan-out: no run has a result")
		for _, r := range runs {
			fmt.Fprintf(w, "  pair %d %s: %s\n", r.pair, r.target, r.err)
		}
		return
	}
	l := first.Live
	fmt.Fprintf(w, "\nfan-out: tapwars against the bare scoreboard server, %d %s clients (%d SSE, %d WS), %d players, taps %s, %.0f s phases\n",
		l.Clients, l.Format, l.SSEClients, l.WSClients, first.Players, rateStr(first.Rate), first.Duration)
	fmt.Fprintf(w, "%-5s %-8s %12s %8s %13s %8s %11s %10s %9s %8s %6s\n", "pair", "server", "updates/s p50", "p10", "fresh p99 ms", "taps/s", "KiB/client", "server CPU", "stack CPU", "drops", "exact")
	byTarget := map[string][]*Result{}
	for _, r := range runs {
		if r.res == nil {
			fmt.Fprintf(w, "%-5d %-8s %s\n", r.pair, r.target, r.err)
			continue
		}
		x := r.res
		byTarget[r.target] = append(byTarget[r.target], x)
		fmt.Fprintf(w, "%-5d %-8s %12.2f %8.2f %13.1f %8.0f %11.1f %10s %9s %8s %6v\n", r.pair, r.target, x.Live.UpdatesP50, x.Live.UpdatesP10,
			x.Live.Freshness.P99, x.TapRate, float64(x.Memory.ServerPerClient)/1024, cpuShare(r.cpuServer, x), cpuShare(r.cpuStack, x),
			fmt.Sprintf("%d+%d", x.Live.ConnectErrors, x.Live.Dropped), x.Verify.Exact)
	}
	for _, t := range []string{"bare", "tapwars"} {
		rs := byTarget[t]
		if len(rs) == 0 {
			continue
		}
		fmt.Fprintf(w, "%-5s %-8s %12.2f %8.2f %13.1f %8.0f %11.1f\n", "med", t,
			medianOf(rs, func(r *Result) float64 { return r.Live.UpdatesP50 }),
			medianOf(rs, func(r *Result) float64 { return r.Live.UpdatesP10 }),
			medianOf(rs, func(r *Result) float64 { return r.Live.Freshness.P99 }),
			medianOf(rs, func(r *Result) float64 { return r.TapRate }),
			medianOf(rs, func(r *Result) float64 { return float64(r.Memory.ServerPerClient) / 1024 }))
	}
	// Ratios pair by pair: only pairs with both runs.
	pairs := map[int]map[string]*Result{}
	for _, r := range runs {
		if r.res != nil {
			if pairs[r.pair] == nil {
				pairs[r.pair] = map[string]*Result{}
			}
			pairs[r.pair][r.target] = r.res
		}
	}
	nums := make([]int, 0, len(pairs))
	for n := range pairs {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	var up50, up10, fresh []float64
	for _, n := range nums {
		t, b := pairs[n]["tapwars"], pairs[n]["bare"]
		if t == nil || b == nil {
			continue
		}
		up50 = append(up50, ratio(t.Live.UpdatesP50, b.Live.UpdatesP50))
		up10 = append(up10, ratio(t.Live.UpdatesP10, b.Live.UpdatesP10))
		fresh = append(fresh, ratio(t.Live.Freshness.P99, b.Live.Freshness.P99))
	}
	if len(up50) == 0 {
		fmt.Fprintln(w, "tapwars / bare: no pair has both runs")
		return
	}
	fmt.Fprintf(w, "tapwars / bare (median of %d pairs): updates/s p50 %.3f %v, p10 %.3f %v; freshness p99 %.3f %v (above 1: tapwars' pages are further behind)\n",
		len(up50), round3(median(up50)), roundAll(up50), round3(median(up10)), roundAll(up10), round3(median(fresh)), roundAll(fresh))
}

// cpuShare is secs of CPU over the run's measured phases, in % of one core.
func cpuShare(secs float64, r *Result) string {
	var el float64
	for _, ph := range r.Phases {
		el += ph.Seconds
	}
	if secs <= 0 || el <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", secs/el*100)
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func medianOf(rs []*Result, f func(*Result) float64) float64 {
	xs := make([]float64, len(rs))
	for i, r := range rs {
		xs[i] = f(r)
	}
	return median(xs)
}

// fanoutReport prints the report of the runs in dir.
func fanoutReport(w io.Writer, dir string) error {
	runs, err := readFanoutRuns(strings.TrimRight(dir, "/"))
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return fmt.Errorf("no tapwars-N.json or bare-N.json in %s", dir)
	}
	printFanoutReport(w, runs)
	return nil
}
