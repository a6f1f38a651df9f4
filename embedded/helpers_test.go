package embedded

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv("EMBEDDED_TEST_CHILD_DIR"); dir != "" {
		runChild(dir)
		return
	}
	os.Exit(m.Run())
}

// runChild serves a redis-server child or a broker until it is killed; the
// parent test kill -9s it.
func runChild(dir string) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if os.Getenv("EMBEDDED_TEST_CHILD_KIND") == KindRedisServer {
		r, err := StartRedis(context.Background(), RedisOptions{Dir: dir, Mode: KindRedisServer, Logger: logger})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Println("URL", r.URL(), r.srv.cmd.Process.Pid)
		select {}
	}
	if os.Getenv("EMBEDDED_TEST_CHILD_KIND") == "kafka" {
		k, err := StartKafka(KafkaOptions{Dir: dir, Partitions: 4, Topics: []string{"game-taps"}, Logger: logger})
		if err != nil {
			fmt.Println("ERR", err)
			os.Exit(2)
		}
		fmt.Println("ADDR", k.Addrs()[0])
		select {}
	}
	fmt.Println("ERR unknown EMBEDDED_TEST_CHILD_KIND")
	os.Exit(2)
}

func quietLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func client(t testing.TB, url string, db int) *redis.Client {
	t.Helper()
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	o.DB = db
	o.MaxRetries = -1
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func startMem(t testing.TB, dir string) *Redis {
	t.Helper()
	r, err := StartRedis(context.Background(), RedisOptions{Dir: dir, Mode: KindMemory, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// dump renders every key of databases 0..2 canonically: type, value and
// whether it has a TTL.
func dump(t testing.TB, url string) string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for db := 0; db < 3; db++ {
		c := client(t, url, db)
		keys, err := c.Keys(ctx, "*").Result()
		if err != nil {
			t.Fatal(err)
		}
		sort.Strings(keys)
		for _, k := range keys {
			typ := c.Type(ctx, k).Val()
			var v string
			switch typ {
			case "string":
				v = c.Get(ctx, k).Val()
			case "hash":
				h := c.HGetAll(ctx, k).Val()
				fs := make([]string, 0, len(h))
				for f, x := range h {
					if ttl := c.HTTL(ctx, k, f).Val(); len(ttl) == 1 && ttl[0] > 0 {
						x += "(ttl)"
					}
					fs = append(fs, f+"="+x)
				}
				sort.Strings(fs)
				v = strings.Join(fs, ",")
			case "list":
				v = strings.Join(c.LRange(ctx, k, 0, -1).Val(), ",")
			case "set":
				s := c.SMembers(ctx, k).Val()
				sort.Strings(s)
				v = strings.Join(s, ",")
			case "zset":
				for _, z := range c.ZRangeWithScores(ctx, k, 0, -1).Val() {
					v += fmt.Sprintf("%v:%v,", z.Member, z.Score)
				}
			case "stream":
				for _, e := range c.XRange(ctx, k, "-", "+").Val() {
					v += fmt.Sprintf("%s%v,", e.ID, e.Values)
				}
			default:
				t.Fatalf("unexpected type %q of %q", typ, k)
			}
			ttl := c.PTTL(ctx, k).Val() > 0
			out = append(out, fmt.Sprintf("db%d %s %s ttl=%v: %s", db, typ, k, ttl, v))
		}
	}
	return strings.Join(out, "\n")
}

// writeSome writes keys of each type the game uses, through a Lua script too.
func writeSome(t testing.TB, url string) {
	t.Helper()
	ctx := context.Background()
	c := client(t, url, 0)
	c.Set(ctx, "game:total:taps", 42, 0)
	c.HSet(ctx, "game:users", "a", `{"id":"a","tapCount":1}`, "b", `{"id":"b","tapCount":2}`)
	c.ZAdd(ctx, "game:leaderboard", redis.Z{Score: 2, Member: "b"}, redis.Z{Score: 1, Member: "a"})
	c.Set(ctx, "ttl", "x", time.Hour)
	if err := c.Eval(ctx, "redis.call('INCRBY', KEYS[1], ARGV[1]); return redis.call('HSET', KEYS[2], 'f', ARGV[1])", []string{"n", "h"}, 5).Err(); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t testing.TB, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
