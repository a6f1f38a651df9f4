// Package testenv starts the real parts tests run against: a redis-server of
// their own on a free loopback port with a temp dir (so a test can stop,
// kill and restart it and check persistence), and the kfake Kafka broker
// over TCP.
package testenv

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Redis is a redis-server child process owned by one test.
type Redis struct {
	t    testing.TB
	Dir  string
	Port int
	cmd  *exec.Cmd
	opt  RedisOptions
}

// RedisOptions secure a test's redis-server or add arguments.
type RedisOptions struct {
	PKI            *PKI     // serve TLS only (--port 0 --tls-port), with PKI's server certificate
	User, Password string   // an ACL user with every right; the default user is off
	Args           []string // more redis-server arguments, e.g. --replicaof
}

// StartRedis starts redis-server with AOF (appendfsync always, so a kill
// loses nothing acknowledged) in a temp dir. It is stopped at test end.
func StartRedis(t testing.TB) *Redis { return StartRedisWith(t, RedisOptions{}) }

// StartRedisWith is StartRedis with TLS, an ACL user or more arguments.
func StartRedisWith(t testing.TB, o RedisOptions) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (apt-get install redis-server): %v", err)
	}
	r := &Redis{t: t, Dir: t.TempDir(), Port: FreePort(t), opt: o}
	r.Start()
	t.Cleanup(r.Kill)
	return r
}

// URL is the redis:// (rediss:// with TLS) URL of the server, with the ACL
// user and password.
func (r *Redis) URL() string {
	scheme, user := "redis", ""
	if r.opt.PKI != nil {
		scheme = "rediss"
	}
	if r.opt.User != "" {
		user = url.UserPassword(r.opt.User, r.opt.Password).String() + "@"
	}
	return fmt.Sprintf("%s://%s127.0.0.1:%d/0", scheme, user, r.Port)
}

// Client returns a new client (closed at test end).
func (r *Redis) Client() *redis.Client {
	c := redis.NewClient(r.options())
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (r *Redis) options() *redis.Options {
	o := &redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", r.Port), Username: r.opt.User, Password: r.opt.Password}
	if r.opt.PKI != nil {
		o.TLSConfig = r.opt.PKI.ClientTLS()
	}
	return o
}

// Start (re)starts the server on the same port and dir.
func (r *Redis) Start() {
	r.t.Helper()
	args := []string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1", "--dir", r.Dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "",
		"--daemonize", "no", "--logfile", filepath.Join(r.Dir, "redis.log")}
	if p := r.opt.PKI; p != nil {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(r.Port),
			"--tls-cert-file", p.ServerCert, "--tls-key-file", p.ServerKey,
			"--tls-ca-cert-file", p.CAFile, "--tls-auth-clients", "no", "--tls-replication", "yes")
	}
	if r.opt.User != "" {
		args = append(args, "--user", "default", "off", "--user", r.opt.User, "on", ">"+r.opt.Password, "~*", "&*", "+@all")
	}
	r.cmd = exec.Command("redis-server", append(args, r.opt.Args...)...)
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	o := r.options()
	o.MaxRetries = -1
	c := redis.NewClient(o)
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.Ping(context.Background()).Err()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.Dir, "redis.log"))
			r.t.Fatalf("redis-server did not answer: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop shuts the server down cleanly (SHUTDOWN fsyncs the AOF).
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// RestartEmpty kills the server and starts it again without its data, like
// a Redis run without persistence that restarted.
func (r *Redis) RestartEmpty() {
	r.t.Helper()
	r.Kill()
	entries, _ := os.ReadDir(r.Dir)
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(r.Dir, e.Name())); err != nil {
			r.t.Fatal(err)
		}
	}
	r.Start()
}

// Kill stops the server with SIGKILL, like a crash.
func (r *Redis) Kill() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// Kafka is a kfake broker owned by one test, reached over TCP.
type Kafka struct {
	t          testing.TB
	Dir        string
	Port       int
	Partitions int32
	Cluster    *kfake.Cluster
	opts       []kfake.Opt // extra options: SASL, TLS
}

// StartKafka starts kfake with a data dir and the topics seeded.
func StartKafka(t testing.TB, partitions int32, topics ...string) *Kafka {
	return StartKafkaWith(t, partitions, nil, topics...)
}

// StartKafkaWith is StartKafka with extra kfake options, such as
// kfake.EnableSASL(), kfake.Superuser(...) or kfake.TLS(...).
func StartKafkaWith(t testing.TB, partitions int32, opts []kfake.Opt, topics ...string) *Kafka {
	t.Helper()
	k := &Kafka{t: t, Dir: t.TempDir(), Port: FreePort(t), Partitions: partitions, opts: opts}
	k.start(topics)
	t.Cleanup(k.Stop)
	return k
}

func (k *Kafka) start(topics []string) {
	k.t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(k.Port),
		kfake.DataDir(k.Dir),
		kfake.DefaultNumPartitions(int(k.Partitions)),
		kfake.AllowAutoTopicCreation(),
		kfake.SeedTopics(k.Partitions, topics...),
	}, k.opts...)...)
	if err != nil {
		k.t.Fatalf("start kfake: %v", err)
	}
	k.Cluster = c
}

// Addrs are the bootstrap brokers.
func (k *Kafka) Addrs() []string { return []string{fmt.Sprintf("127.0.0.1:%d", k.Port)} }

// Stop shuts the broker down (it persists to Dir).
func (k *Kafka) Stop() {
	if k.Cluster != nil {
		k.Cluster.Close()
		k.Cluster = nil
	}
}

// Restart starts the broker again on the same port and dir.
func (k *Kafka) Restart() {
	k.Stop()
	k.start(nil)
}

// RestartWith restarts the broker with other extra options (e.g. a changed
// password).
func (k *Kafka) RestartWith(opts []kfake.Opt) {
	k.opts = opts
	k.Restart()
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Eventually polls cond until it returns "" or the timeout passes, then
// fails with the last message.
func Eventually(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var msg string
	for time.Now().Before(deadline) {
		if msg = cond(); msg == "" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("condition not met after %v: %s", timeout, strings.TrimSpace(msg))
}
