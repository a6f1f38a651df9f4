package embedded

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// redisServer is a redis-server child process.
type redisServer struct {
	dir     string
	port    int
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	waitErr error
	lock    *os.File
	log     *slog.Logger
}

const (
	pidFile      = "redis-server.pid"
	redisLogFile = "redis.log"
	readyTimeout = 10 * time.Second
)

func startRedisServer(ctx context.Context, dir string, logger *slog.Logger) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	lock, err := lockDir(dir, lockWait)
	if err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	stopStale(dir, logger)
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			unlockDir(lock)
			return nil, fmt.Errorf("embedded redis: %w", err)
		}
		rs := &redisServer{dir: dir, port: port, done: make(chan struct{}), lock: lock, log: logger}
		err = rs.spawn(ctx, bin)
		if err == nil {
			return rs, nil
		}
		lastErr = err
		// Another process may have taken the port between our probe and
		// redis-server's bind: try another one.
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	unlockDir(lock)
	return nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (rs *redisServer) spawn(ctx context.Context, bin string) error {
	logPath := filepath.Join(rs.dir, redisLogFile)
	args := []string{
		"--port", strconv.Itoa(rs.port),
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--daemonize", "no",
		"--dir", rs.dir,
		"--logfile", logPath,
		"--appendonly", "yes",
		"--appendfsync", "everysec",
		"--save", "",
	}
	logStart := fileSize(logPath)
	rs.cmd = exec.Command(bin, args...)
	rs.cmd.Dir = rs.dir
	rs.cmd.SysProcAttr = childAttr()

	// Pdeathsig fires when the forking OS thread exits, not the process, and
	// the Go runtime may retire threads. Start and wait on a goroutine locked
	// to its thread, so that thread lives exactly as long as the child.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := rs.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		rs.waitErr = rs.cmd.Wait()
		close(rs.done)
	}()
	if err := <-started; err != nil {
		return fmt.Errorf("embedded redis: starting %s: %w", bin, err)
	}
	writeFileAtomic(rs.dir, pidFile, []byte(strconv.Itoa(rs.cmd.Process.Pid)+"\n"))

	deadline := time.Now().Add(readyTimeout)
	for {
		select {
		case <-rs.done:
			return fmt.Errorf("embedded redis: redis-server exited during start (%v); %s:\n%s", rs.waitErr, logPath, logTail(logPath, logStart))
		default:
		}
		reply, err := rs.command("PING", 500*time.Millisecond)
		if err == nil && reply == "+PONG" {
			rs.log.Debug("embedded redis: redis-server ready", "pid", rs.cmd.Process.Pid, "port", rs.port, "dir", rs.dir)
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			why := "timed out"
			if ctx.Err() != nil {
				why = ctx.Err().Error()
			}
			rs.kill()
			return fmt.Errorf("embedded redis: redis-server did not answer PING (%s; last: %q %v); %s:\n%s", why, reply, err, logPath, logTail(logPath, logStart))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// command sends one inline command and returns the first reply line.
func (rs *redisServer) command(cmd string, timeout time.Duration) (string, error) {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(rs.port)), timeout)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, cmd+"\r\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func (rs *redisServer) kill() {
	rs.cmd.Process.Kill()
	<-rs.done
}

// shutdown sends SHUTDOWN (redis-server fsyncs its AOF and exits), falling
// back to SIGTERM and SIGKILL.
func (rs *redisServer) shutdown() error {
	defer unlockDir(rs.lock)
	select {
	case <-rs.done:
		os.Remove(filepath.Join(rs.dir, pidFile))
		return fmt.Errorf("embedded redis: redis-server had already exited: %v", rs.waitErr)
	default:
	}
	var errs []error
	// A successful SHUTDOWN closes the connection without a reply.
	if reply, err := rs.command("SHUTDOWN", 10*time.Second); strings.HasPrefix(reply, "-") {
		errs = append(errs, fmt.Errorf("SHUTDOWN: %s", reply))
	} else if err != nil && !errors.Is(err, io.EOF) && !isConnReset(err) {
		errs = append(errs, fmt.Errorf("SHUTDOWN: %w", err))
	}
	select {
	case <-rs.done:
	case <-time.After(15 * time.Second):
		rs.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-rs.done:
		case <-time.After(10 * time.Second):
			rs.cmd.Process.Kill()
			<-rs.done
			errs = append(errs, errors.New("redis-server did not exit; killed"))
		}
	}
	if rs.waitErr != nil {
		errs = append(errs, fmt.Errorf("redis-server: %w", rs.waitErr))
	}
	os.Remove(filepath.Join(rs.dir, pidFile))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("embedded redis: %w", err)
	}
	return nil
}

func isConnReset(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// stopStale ends a redis-server left running on dir by an earlier process
// (we hold the directory lock, so its parent is gone). It is recognised by
// the pid file, its command line and its working directory, so that an
// unrelated process that reused the pid is never touched. SIGTERM makes it
// fsync its AOF and exit.
func stopStale(dir string, logger *slog.Logger) {
	b, err := os.ReadFile(filepath.Join(dir, pidFile))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), "redis-server") {
		return
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || filepath.Clean(cwd) != filepath.Clean(dir) {
		return
	}
	logger.Warn("embedded redis: stopping a redis-server left over from an earlier run", "pid", pid, "dir", dir)
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if !alive(pid) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	for i := 0; i < 100 && alive(pid); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

func fileSize(path string) int64 {
	if fi, err := os.Stat(path); err == nil {
		return fi.Size()
	}
	return 0
}

// logTail returns the end of what was written to path since offset from.
func logTail(path string, from int64) string {
	f, err := os.Open(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer f.Close()
	size := fileSize(path)
	if size-from > 4096 {
		from = size - 4096
	}
	if from < 0 || from > size {
		from = 0
	}
	f.Seek(from, io.SeekStart)
	b, _ := io.ReadAll(f)
	return strings.TrimSpace(string(b))
}
