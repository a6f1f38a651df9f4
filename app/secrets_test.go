package app_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// writeSecret writes a secret file as Kubernetes and `echo` do (with a
// trailing newline) and returns its path.
func writeSecret(t *testing.T, name, value string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Every secret comes from a file: ADMIN_TOKEN_FILE, SESSION_SECRET_FILE,
// KAFKA_PASSWORD_FILE, REDIS_URL_FILE, as mounted Kubernetes secrets. The
// instance reaches the SCRAM broker and the ACL Redis with them and the
// admin API takes the token from the file.
func TestSecretsFromFiles(t *testing.T) {
	sk := startSecuredKafka(t, "SCRAM-SHA-512", nil, false)
	r := testenv.StartRedisWith(t, testenv.RedisOptions{User: redisUser, Password: redisPassword})
	const session = "session-secret-from-a-file-0123"
	env := map[string]string{
		"REDIS_URL": "", "REDIS_URL_FILE": writeSecret(t, "redis-url", r.URL()),
		"KAFKA_PASSWORD": "", "KAFKA_PASSWORD_FILE": writeSecret(t, "kafka-password", kafkaPassword),
		"SESSION_SECRET": "", "SESSION_SECRET_FILE": writeSecret(t, "session-secret", session),
		"ADMIN_TOKEN_FILE": writeSecret(t, "admin-token", admToken),
	}
	m := startApp(t, r, sk.k, overlay(sk.env, env), nil)
	if m.Config.SessionSecret != session || m.Config.KafkaPassword != kafkaPassword || m.Config.RedisURL != r.URL() {
		t.Fatal("a secret file was not read exactly (one trailing newline removed)")
	}
	base := m.URL()
	a := join(t, base, "ann")
	tapN(t, base, a, 3)
	waitTotals(t, base, map[*joined]int64{&a: 3})
	if code, body := admin(t, "GET", base+"/admin/stats?format=json", "", nil); code != 200 {
		t.Fatalf("admin with the token from ADMIN_TOKEN_FILE: %d %s", code, body)
	}
}

func TestSecretFileRules(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	parse := func(env map[string]string, args ...string) (app.Config, error) {
		var c app.Config
		err := c.Parse(args, func(k string) string { return env[k] }, io.Discard)
		return c, err
	}
	// One trailing newline goes, the rest is the secret.
	c, err := parse(map[string]string{"SESSION_SECRET_FILE": file("crlf", "abc-0123456789-xyz\r\n"), "KAFKA_PASSWORD_FILE": file("two", "p w\n\n")})
	if err != nil || c.SessionSecret != "abc-0123456789-xyz" || c.KafkaPassword != "p w\n" {
		t.Fatalf("%q %q %v", c.SessionSecret, c.KafkaPassword, err)
	}
	// A flag names the file too, and wins over the variable.
	c, err = parse(map[string]string{"ADMIN_TOKEN": "from-the-environment-0123456789ab"}, "-admin-token-file", file("tok", "from-the-file-0123456789abcdefghi\n"))
	if err != nil || c.AdminToken != "from-the-file-0123456789abcdefghi" {
		t.Fatalf("%q %v", c.AdminToken, err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"both set", map[string]string{"ADMIN_TOKEN": "x-0123456789abcdef", "ADMIN_TOKEN_FILE": file("a", "y")}, nil,
			"both ADMIN_TOKEN and ADMIN_TOKEN_FILE are set"},
		{"missing file", map[string]string{"KAFKA_PASSWORD_FILE": filepath.Join(dir, "nope")}, nil,
			"KAFKA_PASSWORD_FILE: open " + filepath.Join(dir, "nope") + ": no such file"},
		{"unreadable file", map[string]string{"REDIS_URL_FILE": dir}, nil, "REDIS_URL_FILE: read " + dir},
		{"both flags", nil, []string{"-session-secret", "s-0123456789abcdef", "-session-secret-file", file("s", "t")},
			"both -session-secret and -session-secret-file are given"},
		{"bad secret from a file", map[string]string{"ADMIN_TOKEN_FILE": file("short", "short-tok-4\n")}, nil,
			"ADMIN_TOKEN_FILE " + filepath.Join(dir, "short") + ": must be at least 32 characters"},
		{"bad secret from a flag", nil, []string{"-admin-token", "short-tok-4"}, "ADMIN_TOKEN: must be at least 32 characters"},
		{"bad secret from the environment", map[string]string{"ADMIN_TOKEN": "short-tok-4"}, nil, "ADMIN_TOKEN: must be at least 32 characters"},
		// 16 characters were once enough; a chosen token must now be long.
		{"chosen token too short to be safe", map[string]string{"ADMIN_TOKEN": "chosen-token-31-characters-long"}, nil, "ADMIN_TOKEN: must be at least 32 characters, so that it cannot be guessed: generate one with openssl rand -hex 32"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "short-tok-4") {
				t.Fatalf("the error repeats the secret: %v", err)
			}
		})
	}
	// Every secret setting has its _FILE variant among the setting names.
	names := strings.Join(app.SettingNames(), " ")
	for _, n := range []string{"ADMIN_TOKEN_FILE", "SESSION_SECRET_FILE", "KAFKA_PASSWORD_FILE", "REDIS_URL_FILE", "KAFKA_SSL", "KAFKA_SASL_MECHANISM"} {
		if !strings.Contains(" "+names+" ", " "+n+" ") {
			t.Errorf("SettingNames lacks %s: %s", n, names)
		}
	}
}

// Secrets never show: not in the log at debug level, /readyz, error pages
// or metrics — while everything works, when Redis and Kafka fail at run
// time, and when a start fails on a wrong password.
func TestSecretsNeverShown(t *testing.T) {
	const (
		kafkaMarker   = "kafka-marker-Q7Z1"
		redisMarker   = "redis-marker-K2X9"
		sessionMarker = "session-marker-W4P8-0123456789"
		adminMarker   = "admin-marker-R5T3-0123456789abcd"
	)
	var opts []kfake.Opt
	opts = append(opts, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", kafkaUser, kafkaMarker))
	k := testenv.StartKafkaWith(t, 2, opts, stream.Topic)
	r := testenv.StartRedisWith(t, testenv.RedisOptions{User: redisUser, Password: redisMarker})
	env := map[string]string{
		"LOG_LEVEL": "debug", "LOG_FORMAT": "json", "REDIS_URL": r.URL(),
		"KAFKA_SASL_MECHANISM": "scram-sha-256", "KAFKA_USERNAME": kafkaUser, "KAFKA_PASSWORD": kafkaMarker,
		"SESSION_SECRET": sessionMarker, "ADMIN_TOKEN": adminMarker,
	}
	var logs syncBuf
	m := startApp(t, r, k, env, func(m *app.Main) { m.LogOutput = &logs })
	base := m.URL()
	var seen strings.Builder // every body a client got
	get := func(method, path, token, body string) int {
		code, _, b := call(t, method, base+path, token, body, nil)
		seen.WriteString(b)
		return code
	}
	a := join(t, base, "ann")
	get("POST", "/api/tap", a.Token, `{"count":2}`)
	get("POST", "/api/tap", a.Token, `{"count":999}`)
	get("POST", "/api/join", "", `{"username":`)
	get("GET", "/nope", "", "")
	get("GET", "/admin/stats", "wrong-admin-token-0123456", "")
	get("GET", "/admin/stats?format=json", adminMarker, "")
	_, _, metrics := call(t, "GET", metricsOf(t, base), "", "", nil)
	seen.WriteString(metrics)
	get("GET", "/readyz", "", "")

	// Redis dies and Kafka stops taking the password: /readyz names both.
	r.Kill()
	k.Stop()
	for _, f := range globAll(k.Dir, "sasl.json") {
		_ = os.Remove(f)
	}
	k.RestartWith([]kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", kafkaUser, "rotated-0000")})
	testenv.Eventually(t, 15*time.Second, func() string {
		code, body := readyz(t, base)
		if code != 503 || !strings.Contains(body["redis"], "REDIS_URL") || !strings.Contains(body["kafka"], "KAFKA_PASSWORD") {
			return fmt.Sprintf("%d %v", code, body)
		}
		seen.WriteString(fmt.Sprint(body))
		return ""
	})
	get("GET", "/api/game-state", "", "")
	get("POST", "/api/join", "", `{"username":"bob"}`)
	get("POST", "/api/tap", a.Token, "")
	_ = m.Close()

	// A start that fails on the wrong password (and on the Redis URL).
	r.Start()
	badEnv := map[string]string{
		"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "REDIS_URL": r.URL(),
		"KAFKA_BROKERS": strings.Join(k.Addrs(), ","), "SESSION_SECRET": sessionMarker, "ADMIN_TOKEN": adminMarker,
		"KAFKA_SASL_MECHANISM": "scram-sha-256", "KAFKA_USERNAME": kafkaUser, "KAFKA_PASSWORD": kafkaMarker,
		"LOG_LEVEL": "debug",
	}
	f1 := startExpectingError(t, badEnv)
	badEnv["REDIS_URL"] = strings.Replace(r.URL(), redisMarker, redisMarker+"-wrong", 1)
	f2 := startExpectingError(t, badEnv)

	all := map[string]string{"log": logs.String(), "client answers": seen.String(),
		"start error": f1.err.Error() + "\n" + f1.logs, "start error (redis)": f2.err.Error() + "\n" + f2.logs}
	if !strings.Contains(all["log"], "redis") || !strings.Contains(all["client answers"], "unavailable") {
		t.Fatalf("the test saw too little: %s", all["client answers"])
	}
	for where, text := range all {
		for _, marker := range []string{kafkaMarker, redisMarker, sessionMarker, adminMarker} {
			if strings.Contains(text, marker) {
				t.Errorf("%s shows the secret %s:\n%s", where, marker, text)
			}
		}
	}
	t.Logf("start errors: %v / %v", f1.err, f2.err)
}

// globAll finds files called name anywhere under dir.
func globAll(dir, name string) []string {
	var out []string
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == name {
			out = append(out, p)
		}
		return nil
	})
	return out
}
