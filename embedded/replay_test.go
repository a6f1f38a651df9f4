package embedded

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// tenIncr is a small script doing ten INCRBYs and one HINCRBY per call.
var tenIncr = redis.NewScript(`
for i = 0, 9 do redis.call('INCRBY', 'k' .. i, ARGV[1]) end
redis.call('HINCRBY', 'calls', 'n', 1)
return 1
`)

// makeHistory runs evals calls of tenIncr through a client (pipelined) and
// crashes the store, leaving all of it in the log.
func makeHistory(tb testing.TB, dir string, evals int) {
	r := startMem(tb, dir, 1<<40) // no compaction: keep every record in the log
	c := client(tb, r.URL(), 0)
	ctx := context.Background()
	if err := tenIncr.Load(ctx, c).Err(); err != nil {
		tb.Fatal(err)
	}
	const batch = 500
	for done := 0; done < evals; done += batch {
		n := min(batch, evals-done)
		cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := 0; i < n; i++ {
				tenIncr.EvalSha(ctx, p, nil, 1)
			}
			return nil
		})
		if err != nil {
			tb.Fatal(err)
		}
		for _, cmd := range cmds {
			if cmd.Err() != nil {
				tb.Fatal(cmd.Err())
			}
		}
	}
	r.mem.abandon()
}

// writeSyntheticHistory writes a log of records effects records, each the
// ten INCRBYs and the HINCRBY of one tenIncr call, as the store logs them.
func writeSyntheticHistory(tb testing.TB, dir string, records int) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	f, err := os.Create(filepath.Join(dir, aofName(0)))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var w recWriter
	ts := time.Now().Add(-time.Hour).UnixNano()
	for i := 0; i < records; i++ {
		w.begin(recEffects, ts+int64(i))
		w.uvarint(11)
		for k := 0; k < 10; k++ {
			w.uvarint(0)
			w.cmd("INCRBY", []string{"k" + strconv.Itoa(k), "1"})
		}
		w.uvarint(0)
		w.cmd("HINCRBY", []string{"calls", "n", "1"})
		w.end()
		if len(w.b) > 1<<20 {
			f.Write(w.b)
			w.reset()
		}
	}
	f.Write(w.b)
}

func checkHistory(tb testing.TB, url string, evals int) {
	ctx := context.Background()
	c := client(tb, url, 0)
	for k := 0; k < 10; k++ {
		if got := c.Get(ctx, "k"+strconv.Itoa(k)).Val(); got != strconv.Itoa(evals) {
			tb.Fatalf("k%d = %s, want %d", k, got, evals)
		}
	}
	if got := c.HGet(ctx, "calls", "n").Val(); got != strconv.Itoa(evals) {
		tb.Fatalf("calls = %s, want %d", got, evals)
	}
}

// TestReplayHistory checks that a long history replays correctly: scripts
// run through a client and crashed, and a synthetic log of 1,000,000
// INCRBYs (100,000 script calls; fewer under -race).
func TestReplayHistory(t *testing.T) {
	t.Run("client", func(t *testing.T) {
		dir := t.TempDir()
		evals := 3000
		if raceEnabled {
			evals = 1000
		}
		makeHistory(t, dir, evals)
		d, st, err := startDurable(dir, 0, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer d.shutdown()
		if st.records != evals+1 { // + the SCRIPT LOAD
			t.Fatalf("replayed %d records, want %d", st.records, evals+1)
		}
		checkHistory(t, "redis://"+d.m.Addr()+"/0", evals)
	})
	t.Run("synthetic", func(t *testing.T) {
		dir := t.TempDir()
		records := 100_000
		if raceEnabled {
			records = 10_000
		}
		writeSyntheticHistory(t, dir, records)
		d, st, err := startDurable(dir, 0, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		if st.records != records || st.replayErrors != 0 {
			t.Fatalf("stats %+v", st)
		}
		t.Logf("replayed %d records (%d INCRBY, %.1f MB) in %v", st.records, 10*st.records, float64(st.logBytes)/1e6, st.elapsed)
		url := "redis://" + d.m.Addr() + "/0"
		checkHistory(t, url, records)
		if err := d.shutdown(); err != nil {
			t.Fatal(err)
		}
		// The start compacted the log into a snapshot.
		d, st, err = startDurable(dir, 0, quietLogger())
		if err != nil {
			t.Fatal(err)
		}
		defer d.shutdown()
		if st.records != 0 || st.snapshotKeys != 11 {
			t.Fatalf("second start: %+v", st)
		}
		checkHistory(t, "redis://"+d.m.Addr()+"/0", records)
	})
}

// BenchmarkRestart measures a start after a crash with 100,000 calls of a
// small script (1,000,000 INCRBYs) in the log, made through a real client.
//
//	go test ./embedded -run '^$' -bench Restart -benchtime 3x
func BenchmarkRestart(b *testing.B) {
	src := b.TempDir()
	const evals = 100_000
	t0 := time.Now()
	makeHistory(b, src, evals)
	gens, _ := listLogs(src)
	logBytes := fileSize(filepath.Join(src, aofName(gens[len(gens)-1])))
	b.Logf("history: %d script calls in %v, log %.1f MB", evals, time.Since(t0).Round(time.Millisecond), float64(logBytes)/1e6)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), "redis")
		copyDir(b, src, dir)
		b.StartTimer()
		r, err := StartRedis(context.Background(), RedisOptions{Dir: dir, Mode: KindMemory, Logger: quietLogger()})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		checkHistory(b, r.URL(), evals)
		r.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(logBytes)/1e6, "log-MB")
}

func copyDir(tb testing.TB, src, dst string) {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		tb.Fatal(err)
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		tb.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err != nil {
			tb.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			tb.Fatal(err)
		}
		in.Close()
		out.Close()
	}
}
