package embedded

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func needRedisServer(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server is not on PATH")
	}
}

func startServer(t *testing.T, dir string) *Redis {
	t.Helper()
	r, err := StartRedis(context.Background(), RedisOptions{Dir: dir, Mode: KindRedisServer, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind() != KindRedisServer {
		t.Fatalf("kind %s", r.Kind())
	}
	return r
}

func TestRedisServerCloseRestart(t *testing.T) {
	needRedisServer(t)
	dir := t.TempDir()
	r := startServer(t, dir)
	writeSome(t, r.URL())
	before := dump(t, r.URL())
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil { // idempotent
		t.Fatal(err)
	}
	r = startServer(t, dir)
	defer r.Close()
	if after := dump(t, r.URL()); after != before {
		t.Fatalf("state changed across Close/restart:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// TestRedisServerKill9 kill -9s redis-server itself: acknowledged writes
// are in its AOF (written before the reply, fsync'ed every second).
func TestRedisServerKill9(t *testing.T) {
	needRedisServer(t)
	dir := t.TempDir()
	r := startServer(t, dir)
	ctx := context.Background()
	c := client(t, r.URL(), 0)
	n := 0
	for ; n < 500; n++ {
		if err := c.Incr(ctx, "n").Err(); err != nil {
			t.Fatal(err)
		}
	}
	writeSome(t, r.URL())
	before := dump(t, r.URL())
	// With appendfsync everysec, Redis may answer before it writes its AOF
	// buffer while a slow fsync is under way (it delays the write up to
	// 2 s): what it promises is that the buffer reaches the file, so wait
	// for that (tapwars does not depend on it: the log rebuilds the store).
	waitFor(t, "the AOF buffer written", 5*time.Second, func() bool {
		info := c.Info(ctx, "persistence").Val()
		return strings.Contains(info, "aof_buffer_length:0\r\n")
	})
	// Crash: SIGKILL the child, then drop our lock as a dead parent would.
	r.srv.cmd.Process.Signal(syscall.SIGKILL)
	<-r.srv.done
	unlockDir(r.srv.lock)

	r = startServer(t, dir)
	defer r.Close()
	if after := dump(t, r.URL()); after != before {
		t.Fatalf("after kill -9:\n%s\nwant:\n%s", after, before)
	}
}

// TestRedisServerStale leaves a redis-server running as if its parent had
// died without Pdeathsig taking effect: the next start stops it (SIGTERM,
// which fsyncs the AOF) and takes over the directory.
func TestRedisServerStale(t *testing.T) {
	needRedisServer(t)
	dir := t.TempDir()
	r := startServer(t, dir)
	ctx := context.Background()
	if err := client(t, r.URL(), 0).Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	old := r.srv
	unlockDir(old.lock) // the parent is "gone"; its child still runs
	r2 := startServer(t, dir)
	defer r2.Close()
	select {
	case <-old.done:
	case <-time.After(5 * time.Second):
		t.Fatal("stale redis-server still running")
	}
	if got := client(t, r2.URL(), 0).Get(ctx, "k").Val(); got != "v" {
		t.Fatalf("k = %q", got)
	}
	b, _ := os.ReadFile(filepath.Join(dir, pidFile))
	if pid, _ := strconv.Atoi(string(b[:len(b)-1])); pid != r2.srv.cmd.Process.Pid {
		t.Fatalf("pid file %q", b)
	}
}

func TestRedisKindIsSticky(t *testing.T) {
	dir := t.TempDir()
	r := startMem(t, dir)
	r.Close()
	// auto keeps using the in-process store for this directory, even with
	// redis-server on PATH.
	r, err := StartRedis(context.Background(), RedisOptions{Dir: dir, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if r.Kind() != KindMemory {
		t.Fatalf("auto on a memory dir gave %s", r.Kind())
	}
	r.Close()
	if _, err := exec.LookPath("redis-server"); err == nil {
		if _, err := StartRedis(context.Background(), RedisOptions{Dir: dir, Mode: KindRedisServer, Logger: quietLogger()}); err == nil {
			t.Fatal("redis-server accepted a memory directory")
		}
	}
}

// TestRedisServerParentKill9 kill -9s the process that started
// redis-server: Pdeathsig takes the child down with it, and the writes it
// acknowledged are in the AOF at the next start.
func TestRedisServerParentKill9(t *testing.T) {
	needRedisServer(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "EMBEDDED_TEST_CHILD_DIR="+dir, "EMBEDDED_TEST_CHILD_KIND="+KindRedisServer)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	f := strings.Fields(line)
	if err != nil || len(f) != 3 || f[0] != "URL" {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child: %q %v", line, err)
	}
	url := f[1]
	pid, _ := strconv.Atoi(f[2])
	ctx := context.Background()
	c := client(t, url, 0)
	for i := 0; i < 300; i++ {
		if err := c.Incr(ctx, "n").Err(); err != nil {
			t.Fatal(err)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	waitFor(t, "redis-server to die with its parent", 5*time.Second, func() bool { return !alive(pid) })

	r := startServer(t, dir)
	defer r.Close()
	if got := client(t, r.URL(), 0).Get(ctx, "n").Val(); got != "300" {
		t.Fatalf("n = %s, want 300", got)
	}
}
