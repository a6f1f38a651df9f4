package embedded

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// tapScript is shaped like the game's apply script: it patches a user's
// JSON with string.gsub, or with cjson when the pattern does not match, and
// updates a counter and a sorted set.
var tapScript = redis.NewScript(`
local u = redis.call('HGET', KEYS[1], ARGV[1])
if not u then return redis.error_reply('no such user') end
local total = redis.call('INCRBY', KEYS[2], ARGV[2])
local patched, hits = string.gsub(u, '"tapCount":%-?[%d%.e%+]+}$', '"tapCount":' .. total .. '}')
if hits ~= 1 then
  local o = cjson.decode(u)
  o.tapCount = total
  patched = cjson.encode(o)
end
redis.call('HSET', KEYS[1], ARGV[1], patched)
redis.call('ZINCRBY', KEYS[3], ARGV[2], ARGV[1])
return {total, string.upper(ARGV[1]), string.format('%05d', total)}
`)

// writeEverything writes keys of every type, through every path the store
// treats specially, into databases 0, 1 and 2.
func writeEverything(t *testing.T, url string) {
	t.Helper()
	ctx := context.Background()
	c := client(t, url, 0)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.Set(ctx, "str", "hello", 0).Err())
	must(c.Append(ctx, "str", " world").Err())
	must(c.IncrBy(ctx, "game:total:taps", 41).Err())
	must(c.Incr(ctx, "game:total:taps").Err())
	must(c.MSet(ctx, "m1", "a", "m2", "b").Err())
	must(c.Set(ctx, "temp", "x", time.Hour).Err())
	must(c.Set(ctx, "gone", "x", 0).Err())
	must(c.Del(ctx, "gone").Err())
	must(c.Set(ctx, "float", "1.5", 0).Err())
	must(c.IncrByFloat(ctx, "float", 0.25).Err())
	must(c.HSet(ctx, "game:users",
		"u1", `{"id":"u1","username":"Ann","team":"blue","tapCount":0}`,
		"u2", `{"id":"u2","username":"Bob","team":"red","tapCount":3,"x":1}`).Err())
	must(c.HIncrBy(ctx, "h", "f", 3).Err())
	must(c.HSet(ctx, "hx", "f1", "v1", "f2", "v2").Err())
	if err := c.HExpire(ctx, "hx", time.Hour, "f1").Err(); err != nil && !strings.Contains(err.Error(), "unknown command") {
		t.Fatal(err) // HEXPIRE is Redis 7.4+
	}
	must(c.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "a"}, redis.Z{Score: 2.5, Member: "b"}, redis.Z{Score: 9, Member: "c"}).Err())
	must(c.ZIncrBy(ctx, "z", 0.125, "a").Err())
	must(c.ZRem(ctx, "z", "b").Err())
	must(c.ZAdd(ctx, "old", redis.Z{Score: 1, Member: "x"}, redis.Z{Score: 100, Member: "y"}).Err())
	must(c.ZRemRangeByScore(ctx, "old", "-inf", "(50").Err())
	must(c.SAdd(ctx, "set", "a", "b", "c", "d", "e").Err())
	if _, err := c.SPop(ctx, "set").Result(); err != nil {
		t.Fatal(err)
	}
	must(c.SPopN(ctx, "set", 2).Err())
	must(c.RPush(ctx, "list", "1", "2", "3", "4").Err())
	must(c.LPop(ctx, "list").Err())
	must(c.XAdd(ctx, &redis.XAddArgs{Stream: "stream", Values: []string{"f", "v"}}).Err())
	must(c.XAdd(ctx, &redis.XAddArgs{Stream: "stream", ID: "99999999999999-7", Values: []string{"g", "w"}}).Err())
	must(c.Publish(ctx, "game:updates", "x").Err())

	// Scripts: EVAL (first Run of a redis.Script falls back from EVALSHA),
	// then EVALSHA; both through gsub and cjson.
	keys := []string{"game:users", "game:team:blue:score", "game:leaderboard"}
	for i := 0; i < 3; i++ {
		res, err := tapScript.Run(ctx, c, keys, "u1", 2).Slice()
		must(err)
		if res[1] != "U1" {
			t.Fatalf("script reply %v", res)
		}
	}
	must(tapScript.Run(ctx, c, keys, "u2", 5).Err())
	must(c.Eval(ctx, "return redis.call('SET', KEYS[1], string.rep(ARGV[1], 3))", []string{"evalkey"}, "ab").Err())
	sha, err := c.ScriptLoad(ctx, "redis.call('HINCRBY', KEYS[1], 'n', ARGV[1]); return redis.call('SPOP', KEYS[2])").Result()
	must(err)
	must(c.SAdd(ctx, "set2", "p", "q", "r").Err())
	if err := c.EvalSha(ctx, sha, []string{"loaded", "set2"}, 7).Err(); err != nil && err != redis.Nil {
		t.Fatal(err)
	}
	// A script that fails half-way keeps its first write, as in Redis.
	if err := c.Eval(ctx, "redis.call('SET', 'half', '1'); return redis.call('INCR', 'str')", nil).Err(); err == nil {
		t.Fatal("INCR of a non-number succeeded")
	}

	// MULTI/EXEC, a WATCH that aborts, and DISCARD.
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "tx:n")
		p.HSet(ctx, "tx:h", "a", "1")
		p.SPop(ctx, "set2")
		p.Get(ctx, "tx:n")
		return nil
	})
	must(err)
	c2 := client(t, url, 0)
	err = c.Watch(ctx, func(tx *redis.Tx) error {
		must(c2.Set(ctx, "watched", "other", 0).Err())
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, "watched", "mine", 0)
			p.Set(ctx, "watch:lost", "1", 0)
			return nil
		})
		return err
	}, "watched")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("WATCH: %v", err)
	}
	conn := c.Conn()
	must(conn.Do(ctx, "MULTI").Err())
	must(conn.Do(ctx, "SET", "discarded", "1").Err())
	must(conn.Do(ctx, "DISCARD").Err())
	// A transaction that fails at queue time is not applied.
	must(conn.Do(ctx, "MULTI").Err())
	must(conn.Do(ctx, "SET", "aborted", "1").Err())
	if conn.Do(ctx, "BOGUS").Err() == nil {
		t.Fatal("unknown command queued")
	}
	if conn.Do(ctx, "EXEC").Err() == nil {
		t.Fatal("EXEC of a dirty transaction succeeded")
	}
	conn.Close()

	// Other databases.
	c1 := client(t, url, 1)
	must(c1.Set(ctx, "str", "db1", 0).Err())
	must(c1.HSet(ctx, "h1", "a", "b").Err())
	must(c1.HSet(ctx, "u", "x", `{"tapCount":0}`).Err())
	must(tapScript.Run(ctx, c1, []string{"u", "n", "lb"}, "x", 4).Err())
	c2db := client(t, url, 2)
	must(c2db.Set(ctx, "flushed", "1", 0).Err())
	must(c2db.FlushDB(ctx).Err())
	must(c2db.Set(ctx, "after", "flush", 0).Err())
}

func TestMemoryCloseRestart(t *testing.T) {
	dir := t.TempDir()
	r := startMem(t, dir, 0)
	if r.Kind() != KindMemory || !strings.HasPrefix(r.URL(), "redis://127.0.0.1:") {
		t.Fatalf("kind %s url %s", r.Kind(), r.URL())
	}
	writeEverything(t, r.URL())
	before := dump(t, r.URL())
	for _, want := range []string{"db0 string str ttl=false: hello world", "db0 string temp ttl=true", "db1 hash h1",
		`"tapCount":6}`, `"tapCount":11,"team"`, "f1=v1(ttl)", "db0 string half", "db0 hash loaded ttl=false: n=7", "db2 string after"} {
		if !strings.Contains(before, want) {
			t.Errorf("state lacks %q:\n%s", want, before)
		}
	}
	for _, not := range []string{"watch:lost", "discarded", "aborted", "flushed", "gone"} {
		if strings.Contains(before, not) {
			t.Errorf("state has %q:\n%s", not, before)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if gens, _ := listLogs(dir); len(gens) != 1 || fileSize(filepath.Join(dir, aofName(gens[0]))) != 0 {
		t.Fatalf("after Close want one empty log, have %v", gens)
	}

	r = startMem(t, dir, 0)
	defer r.Close()
	after := dump(t, r.URL())
	if before != after {
		t.Fatalf("state changed across Close/restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The script cache survived: EVALSHA works without a NOSCRIPT fallback.
	ctx := context.Background()
	c := client(t, r.URL(), 0)
	if err := c.EvalSha(ctx, tapScript.Hash(), []string{"game:users", "game:team:blue:score", "game:leaderboard"}, "u1", 1).Err(); err != nil {
		t.Fatalf("EVALSHA after restart: %v", err)
	}
	if got := c.Get(ctx, "game:team:blue:score").Val(); got != "12" {
		t.Fatalf("blue score %s", got)
	}
}

func TestMemoryCrashRestart(t *testing.T) {
	dir := t.TempDir()
	r := startMem(t, dir, 0)
	writeEverything(t, r.URL())
	before := dump(t, r.URL())
	r.mem.abandon() // no snapshot, no fsync: only the log
	if _, err := os.Stat(filepath.Join(dir, snapName)); err == nil {
		t.Fatal("a snapshot before any restart")
	}
	r = startMem(t, dir, 0)
	if _, err := os.Stat(filepath.Join(dir, snapName)); err != nil {
		t.Fatalf("a start that replayed a log writes a snapshot: %v", err)
	}
	after := dump(t, r.URL())
	if before != after {
		t.Fatalf("state changed across crash/restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// And once more, from the snapshot written at the last start.
	r.mem.abandon()
	r = startMem(t, dir, 0)
	defer r.Close()
	if again := dump(t, r.URL()); again != before {
		t.Fatalf("state changed across a second restart:\n%s", again)
	}
}

func TestMemoryPubSubAndRefusals(t *testing.T) {
	dir := t.TempDir()
	r := startMem(t, dir, 0)
	ctx := context.Background()
	c := client(t, r.URL(), 0)
	sub := c.Subscribe(ctx, "game:updates")
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	if n := c.Publish(ctx, "game:updates", "hi").Val(); n != 1 {
		t.Fatalf("PUBLISH reached %d", n)
	}
	select {
	case m := <-sub.Channel():
		if m.Payload != "hi" {
			t.Fatalf("got %v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	if err := c.BLPop(ctx, time.Second, "q").Err(); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Fatalf("BLPOP: %v", err)
	}
	if err := c.PFAdd(ctx, "hll", "a").Err(); err == nil {
		t.Fatal("PFADD accepted")
	}
	if err := c.Eval(ctx, "return redis.call('BLPOP', 'q', 0)", nil).Err(); err == nil {
		t.Fatal("BLPOP from a script accepted")
	}
	// A connection in pub/sub mode cannot write; the refused SET must not
	// reach the log either.
	conn, err := net.Dial("tcp", strings.TrimSuffix(strings.TrimPrefix(r.URL(), "redis://"), "/0"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(conn, "*2\r\n$9\r\nSUBSCRIBE\r\n$2\r\nch\r\n*3\r\n$3\r\nSET\r\n$6\r\nsneaky\r\n$1\r\n1\r\n")
	br := bufio.NewReader(conn)
	var replies []string
	for len(replies) < 7 { // 4 lines of the subscribe push, then the error
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		replies = append(replies, line)
		if strings.HasPrefix(line, "-") {
			break
		}
	}
	if last := replies[len(replies)-1]; !strings.HasPrefix(last, "-") {
		t.Fatalf("SET in pub/sub mode: %q", replies)
	}
	conn.Close()
	r.mem.abandon()
	r = startMem(t, dir, 0)
	defer r.Close()
	if n := client(t, r.URL(), 0).Exists(ctx, "sneaky").Val(); n != 0 {
		t.Fatal("a write refused in pub/sub mode was replayed")
	}
}

// TestMemoryKill9 runs the store in a child process, writes from several
// clients, kill -9s the child mid-stream and checks that every acknowledged
// write is there after a restart, and at most the one in flight on top.
func TestMemoryKill9(t *testing.T) {
	dir := t.TempDir()
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "EMBEDDED_TEST_CHILD_DIR="+dir)
		if round == 2 {
			// Compact every 8 KiB: the kill lands around log rewrites.
			cmd.Env = append(cmd.Env, "EMBEDDED_TEST_REWRITE=8192")
		}
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "URL ") {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("child: %q %v", line, err)
		}
		url := strings.TrimSpace(strings.TrimPrefix(line, "URL "))
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

		ctx := context.Background()
		if round == 0 {
			if err := client(t, url, 0).HSet(ctx, "k9:users", "u", `{"id":"u","tapCount":0}`).Err(); err != nil {
				t.Fatal(err)
			}
		}
		base := loadCounters(t, url)
		var acked [3]atomic.Int64
		var lastErr [3]atomic.Value
		var wg sync.WaitGroup
		stop := make(chan struct{})
		worker := func(i int, op func(c *redis.Client) error) {
			defer wg.Done()
			c := client(t, url, 0)
			for {
				select {
				case <-stop:
				default:
				}
				if err := op(c); err != nil {
					lastErr[i].Store(err.Error())
					return // the child is gone
				}
				acked[i].Add(1)
			}
		}
		wg.Add(3)
		go worker(0, func(c *redis.Client) error { return c.Incr(ctx, "k9:incr").Err() })
		go worker(1, func(c *redis.Client) error {
			return tapScript.Run(ctx, c, []string{"k9:users", "k9:score", "k9:lb"}, "u", 1).Err()
		})
		go worker(2, func(c *redis.Client) error {
			_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, "k9:tx")
				p.HIncrBy(ctx, "k9:txh", "n", 1)
				return nil
			})
			return err
		})
		deadline := time.Now().Add(20 * time.Second)
		for !(acked[0].Load() > 200 && acked[1].Load() > 50 && acked[2].Load() > 50) {
			if time.Now().After(deadline) {
				t.Fatalf("too few writes: %d %d %d acknowledged; errors %v %v %v", acked[0].Load(), acked[1].Load(), acked[2].Load(),
					lastErr[0].Load(), lastErr[1].Load(), lastErr[2].Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err := cmd.Process.Kill(); err != nil { // SIGKILL while writes are in flight
			t.Fatal(err)
		}
		cmd.Wait()
		close(stop)
		wg.Wait()

		r := startMem(t, dir, 0)
		got := loadCounters(t, r.URL())
		for i, name := range []string{"INCR", "script", "MULTI"} {
			a := base[i] + acked[i].Load()
			if got[i] != a && got[i] != a+1 {
				t.Errorf("round %d %s: have %d, acknowledged %d", round, name, got[i], a)
			}
		}
		// Scripts and transactions are all-or-nothing.
		if got[1] != got[3] || got[1] != got[4] {
			t.Errorf("round %d script effects disagree: counter %d, json tapCount %d, zset %d", round, got[1], got[3], got[4])
		}
		if got[2] != got[5] {
			t.Errorf("round %d transaction effects disagree: %d vs %d", round, got[2], got[5])
		}
		t.Logf("round %d: acknowledged %d INCR, %d scripts, %d transactions; restored %v", round, acked[0].Load(), acked[1].Load(), acked[2].Load(), got)
		r.Close()
	}
}

// loadCounters reads the counters TestMemoryKill9 writes.
func loadCounters(t *testing.T, url string) [6]int64 {
	ctx := context.Background()
	c := client(t, url, 0)
	num := func(s string) int64 {
		n, _ := strconv.ParseInt(s, 10, 64)
		return n
	}
	var v [6]int64
	v[0] = num(c.Get(ctx, "k9:incr").Val())
	v[1] = num(c.Get(ctx, "k9:score").Val())
	v[2] = num(c.Get(ctx, "k9:tx").Val())
	u := c.HGet(ctx, "k9:users", "u").Val()
	if i := strings.Index(u, `"tapCount":`); i >= 0 {
		v[3] = num(strings.TrimRight(u[i+len(`"tapCount":`):], "}"))
	}
	v[4] = int64(c.ZScore(ctx, "k9:lb", "u").Val())
	v[5] = num(c.HGet(ctx, "k9:txh", "n").Val())
	return v
}

func TestMemoryTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tail func(valid []byte) []byte
	}{
		{"short header", func([]byte) []byte { return []byte{42, 0, 0} }},
		{"short payload", func([]byte) []byte { return []byte{200, 0, 0, 0, 1, 2, 3, 4, 'C', 1, 2} }},
		{"bad checksum", func(valid []byte) []byte {
			// A copy of a whole record with one byte flipped.
			b := append([]byte(nil), valid...)
			b[len(b)-1] ^= 0xff
			return b
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			r := startMem(t, dir, 0)
			c := client(t, r.URL(), 0)
			ctx := context.Background()
			for i := 0; i < 100; i++ {
				if err := c.Incr(ctx, "n").Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.HSet(ctx, "h", "last", "yes").Err(); err != nil {
				t.Fatal(err)
			}
			before := dump(t, r.URL())
			r.mem.abandon()

			gens, _ := listLogs(dir)
			path := filepath.Join(dir, aofName(gens[len(gens)-1]))
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, next, err := nextRecord(data, 0)
			if err != nil {
				t.Fatal(err)
			}
			tail := tc.tail(data[:next])
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(tail)
			f.Close()

			d, st, err := startDurable(dir, 0, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			if st.tornBytes != int64(len(tail)) || st.records != 101 {
				t.Errorf("stats %+v, want %d torn bytes and 101 records", st, len(tail))
			}
			url := "redis://" + d.m.Addr() + "/0"
			if after := dump(t, url); after != before {
				t.Errorf("state after torn tail:\n%s\nwant:\n%s", after, before)
			}
			d.shutdown()
		})
	}
}

func TestMemoryCompaction(t *testing.T) {
	dir := t.TempDir()
	r := startMem(t, dir, 16<<10)
	ctx := context.Background()
	var wg sync.WaitGroup
	n := 1500
	if raceEnabled {
		n = 600
	}
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := client(t, r.URL(), 0)
			for i := 0; i < n; i++ {
				if err := c.Incr(ctx, "ctr").Err(); err != nil {
					t.Error(err)
					return
				}
				if err := c.HSet(ctx, "h", fmt.Sprintf("w%d", w), strings.Repeat("x", 64)+strconv.Itoa(i)).Err(); err != nil {
					t.Error(err)
					return
				}
				if i%50 == 0 {
					if err := tapScript.Run(ctx, c, []string{"cu", "cs", "cl"}, "u", 1).Err(); err != nil && !strings.Contains(err.Error(), "no such user") {
						t.Error(err)
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	// Several rewrites happened while clients wrote.
	waitFor(t, "rewrite", 10*time.Second, func() bool {
		r.mem.mu.Lock()
		defer r.mem.mu.Unlock()
		return !r.mem.rewriting
	})
	r.mem.mu.Lock()
	gen := r.mem.aofGen
	r.mem.mu.Unlock()
	if gen < 5 {
		t.Fatalf("only %d log generations: no compaction", gen)
	}
	gens, _ := listLogs(dir)
	if len(gens) != 1 || fileSize(filepath.Join(dir, aofName(gens[0]))) > 256<<10 {
		t.Fatalf("logs after compaction: %v", gens)
	}
	before := dump(t, r.URL())
	if !strings.Contains(before, fmt.Sprintf("ctr ttl=false: %d", 4*n)) {
		t.Fatalf("counter wrong before restart:\n%s", before)
	}
	r.mem.abandon()
	r = startMem(t, dir, 16<<10)
	defer r.Close()
	if after := dump(t, r.URL()); after != before {
		t.Fatalf("state after compaction + crash:\n%s\nwant:\n%s", after, before)
	}
}

// TestMemoryInterruptedRewrite covers the two crash windows of a rewrite:
// after the new log was created but before the snapshot was written (both
// logs replay), and after the snapshot but before old logs were removed
// (they must not replay again).
func TestMemoryInterruptedRewrite(t *testing.T) {
	dir := t.TempDir()
	r := startMem(t, dir, 0)
	c := client(t, r.URL(), 0)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		c.Incr(ctx, "n")
	}
	r.mem.abandon()
	gens, _ := listLogs(dir)
	last := gens[len(gens)-1]
	// Window 1: a new, empty log after the current one, no new snapshot.
	os.WriteFile(filepath.Join(dir, aofName(last+1)), nil, 0o644)
	// Window 2: a stale log older than the snapshot.
	data, _ := os.ReadFile(filepath.Join(dir, aofName(last)))
	snapGen := last
	if snapGen > 0 {
		os.WriteFile(filepath.Join(dir, aofName(snapGen-1)), data, 0o644)
	}
	r = startMem(t, dir, 0)
	defer r.Close()
	if got := client(t, r.URL(), 0).Get(ctx, "n").Val(); got != "10" {
		t.Fatalf("n = %s, want 10", got)
	}
	if gens, _ := listLogs(dir); len(gens) != 1 {
		t.Fatalf("logs left: %v", gens)
	}
}

func TestMemoryTTLSurvives(t *testing.T) {
	dir := t.TempDir()
	r := startMem(t, dir, 0)
	c := client(t, r.URL(), 0)
	ctx := context.Background()
	c.Set(ctx, "short", "1", 300*time.Millisecond)
	c.Set(ctx, "long", "1", time.Hour)
	c.PExpireAt(ctx, "long", time.Now().Add(time.Hour))
	r.mem.abandon()
	time.Sleep(400 * time.Millisecond)
	r = startMem(t, dir, 0)
	defer r.Close()
	c = client(t, r.URL(), 0)
	if c.Exists(ctx, "short").Val() != 0 {
		t.Fatal("short-lived key outlived its TTL across a restart")
	}
	if ttl := c.PTTL(ctx, "long").Val(); ttl < 59*time.Minute || ttl > time.Hour {
		t.Fatalf("long TTL %v", ttl)
	}
}
