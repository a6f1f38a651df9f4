package app_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

const (
	redisUser     = "tapwars"
	redisPassword = "redis-pass-5b9d"
)

// The game runs against a redis-server that speaks only TLS and knows only
// an ACL user: REDIS_URL=rediss://user:password@host:port/0 with the CA in
// REDIS_TLS_CA_PATH.
func TestRedisTLSWithACLUser(t *testing.T) {
	pki := testenv.NewPKI(t)
	r := testenv.StartRedisWith(t, testenv.RedisOptions{PKI: pki, User: redisUser, Password: redisPassword})
	k := testenv.StartKafka(t, 2, stream.Topic)
	if !strings.HasPrefix(r.URL(), "rediss://"+redisUser+":"+redisPassword+"@") {
		t.Fatalf("URL %s", r.URL())
	}
	m := startApp(t, r, k, map[string]string{"REDIS_TLS_CA_PATH": pki.CAFile}, nil)
	base := m.URL()
	a, b := join(t, base, "ann"), join(t, base, "bob")
	tapN(t, base, a, 5)
	tapN(t, base, b, 3)
	waitTotals(t, base, map[*joined]int64{&a: 5, &b: 3})
	if code, body := readyz(t, base); code != 200 {
		t.Fatalf("readyz %d %v", code, body)
	}
	// What the game wrote is in that server, under the old game's keys.
	if n, err := r.Client().HLen(t.Context(), "game:users").Result(); err != nil || n != 2 {
		t.Fatalf("game:users: %d %v", n, err)
	}
}

// Wrong or missing credentials, an untrusted certificate and TLS/plaintext
// mismatches stop the start at once with the cause, never the password.
func TestRedisMisconfigurationFailsFast(t *testing.T) {
	pki, other := testenv.NewPKI(t), testenv.NewPKI(t)
	secured := testenv.StartRedisWith(t, testenv.RedisOptions{PKI: pki, User: redisUser, Password: redisPassword})
	acl := testenv.StartRedisWith(t, testenv.RedisOptions{User: redisUser, Password: redisPassword})
	open := testenv.StartRedis(t)
	k := testenv.StartKafka(t, 1, stream.Topic)
	tlsURL := func(user string) string {
		return fmt.Sprintf("rediss://%s127.0.0.1:%d/0", user, secured.Port)
	}
	env := func(url, ca string) map[string]string {
		return map[string]string{
			"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "REDIS_URL": url, "REDIS_TLS_CA_PATH": ca,
			"KAFKA_BROKERS": strings.Join(k.Addrs(), ","), "SESSION_SECRET": "test-secret-0123456789",
		}
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"wrong password", env(tlsURL(redisUser+":wrong-pass-33aa@"), pki.CAFile),
			[]string{"could not use Redis at 127.0.0.1:" + strconv.Itoa(secured.Port), "refused the user name or password in REDIS_URL", "WRONGPASS"}},
		{"no password", env(fmt.Sprintf("redis://127.0.0.1:%d/0", acl.Port), ""),
			[]string{"Redis needs a password", "NOAUTH"}},
		{"untrusted certificate", env(tlsURL(redisUser+":"+redisPassword+"@"), other.CAFile),
			[]string{"certificate is not trusted", "REDIS_TLS_CA_PATH"}},
		{"plaintext at the TLS port", env(fmt.Sprintf("redis://%s:%s@127.0.0.1:%d/0", redisUser, redisPassword, secured.Port), ""),
			[]string{"may require TLS (use a rediss:// URL)"}},
		{"TLS at a plaintext port", env(fmt.Sprintf("rediss://127.0.0.1:%d/0", open.Port), ""),
			[]string{"does not speak TLS on this port, use redis://"}},
		{"CA with a redis:// URL", env(open.URL(), pki.CAFile),
			[]string{"REDIS_TLS_CA_PATH is set but REDIS_URL is not a rediss://"}},
		{"bad URL", env("redis://u:bad-url-pass@127.0.0.1:notaport/0", ""),
			[]string{"REDIS_URL is not a valid URL", "invalid port"}},
		{"sentinel unreachable", env(fmt.Sprintf("redis://127.0.0.1:%d?master_name=mymaster&password=sent-pass-12", testenv.FreePort(t)), ""),
			[]string{"no Sentinel answered"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			startFailsWith(t, tc.env, tc.want, redisPassword, "wrong-pass-33aa", "bad-url-pass", "sent-pass-12")
		})
	}
}

// sentinel is a redis-sentinel process watching the primary "mymaster".
type sentinel struct{ port int }

// startSentinel starts it; with pki it speaks TLS only, to clients and to
// the servers it watches.
func startSentinel(t *testing.T, primaryPort int, user, password string, pki *testenv.PKI) sentinel {
	t.Helper()
	bin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		t.Fatalf("redis-sentinel is not installed (apt-get install redis-sentinel): %v", err)
	}
	dir := t.TempDir()
	port := testenv.FreePort(t)
	conf := filepath.Join(dir, "sentinel.conf") // sentinel rewrites it: one per test
	if err := os.WriteFile(conf, fmt.Appendf(nil, "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"+
		"sentinel monitor mymaster 127.0.0.1 %d 1\n"+
		"sentinel down-after-milliseconds mymaster 1000\n"+
		"sentinel failover-timeout mymaster 4000\n"+
		"sentinel auth-user mymaster %s\nsentinel auth-pass mymaster %s\n",
		port, dir, filepath.Join(dir, "sentinel.log"), primaryPort, user, password), 0o600); err != nil {
		t.Fatal(err)
	}
	if pki != nil {
		f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(f, "port 0\ntls-port %d\ntls-cert-file %s\ntls-key-file %s\ntls-ca-cert-file %s\ntls-replication yes\ntls-auth-clients no\n",
			port, pki.ServerCert, pki.ServerKey, pki.CAFile)
		_ = f.Close()
	}
	cmd := exec.Command(bin, conf)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return sentinel{port: port}
}

// REDIS_URL in go-redis' Sentinel form, with an ACL user on the primary and
// the replica, in plaintext and all-TLS (rediss://): the game finds the
// primary through Sentinel, and when the primary dies and Sentinel promotes
// the replica, the game goes on against the new primary without a restart:
// joins work and taps are counted there.
func TestRedisSentinelFailover(t *testing.T) {
	t.Run("plaintext", func(t *testing.T) { sentinelFailover(t, nil) })
	t.Run("TLS", func(t *testing.T) { sentinelFailover(t, testenv.NewPKI(t)) })
}

func sentinelFailover(t *testing.T, pki *testenv.PKI) {
	acl := testenv.RedisOptions{User: redisUser, Password: redisPassword, PKI: pki}
	primary := testenv.StartRedisWith(t, acl)
	acl.Args = []string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.Port), "--masteruser", redisUser, "--masterauth", redisPassword}
	replica := testenv.StartRedisWith(t, acl)
	s := startSentinel(t, primary.Port, redisUser, redisPassword, pki)
	k := testenv.StartKafka(t, 2, stream.Topic)
	scheme, env := "redis", map[string]string{}
	if pki != nil {
		scheme, env["REDIS_TLS_CA_PATH"] = "rediss", pki.CAFile
	}
	// Sentinel learns about the replica from the primary within a few seconds.
	testenv.Eventually(t, 15*time.Second, func() string {
		info, err := primary.Client().Info(t.Context(), "replication").Result()
		if err != nil || !strings.Contains(info, "connected_slaves:1") || !strings.Contains(info, "state=online") {
			return fmt.Sprintf("%v %s", err, info)
		}
		return ""
	})
	// A second, unreachable Sentinel address shows the addr= form.
	env["REDIS_URL"] = fmt.Sprintf("%s://127.0.0.1:%d/0?master_name=mymaster&addr=127.0.0.1:%d&username=%s&password=%s",
		scheme, s.port, testenv.FreePort(t), redisUser, redisPassword)
	m := startApp(t, primary, k, env, nil)
	base := m.URL()
	a := join(t, base, "ann")
	tapN(t, base, a, 4)
	waitTotals(t, base, map[*joined]int64{&a: 4})
	// The replica has it too before the primary goes.
	testenv.Eventually(t, 10*time.Second, func() string {
		if v, err := replica.Client().Get(t.Context(), "game:total:taps").Result(); err != nil || v != "4" {
			return fmt.Sprintf("replica total %q %v", v, err)
		}
		return ""
	})

	primary.Kill()
	start := time.Now()
	var b joined
	testenv.Eventually(t, 30*time.Second, func() string {
		code, _, body := call(t, "POST", base+"/api/join", "", `{"username":"bob"}`, &b)
		if code != 201 {
			return fmt.Sprintf("join after failover: %d %s", code, body)
		}
		return ""
	})
	t.Logf("joins work again %v after the primary died", time.Since(start).Round(time.Millisecond))
	tapN(t, base, a, 2)
	tapN(t, base, b, 3)
	waitTotals(t, base, map[*joined]int64{&a: 6, &b: 3})
	if role, err := replica.Client().Do(t.Context(), "ROLE").Slice(); err != nil || role[0] != "master" {
		t.Fatalf("the replica was not promoted: %v %v", role, err)
	}
	if n, err := replica.Client().HLen(t.Context(), "game:users").Result(); err != nil || n != 2 {
		t.Fatalf("game:users on the promoted replica: %d %v", n, err)
	}
	if code, body := readyz(t, base); code != 200 {
		t.Fatalf("readyz %d %v", code, body)
	}
}
