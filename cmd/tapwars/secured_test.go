package main_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

// The real binary against a Kafka that wants SCRAM over TLS and a Redis
// with an ACL user, the passwords in mounted files (as the Kubernetes
// manifests run it): it serves and counts. With a wrong password in the file
// it exits 1 within seconds, saying which settings to check and never the
// password.
func TestBinaryWithSecuredKafkaAndRedis(t *testing.T) {
	testenv.EachKafka(t, testBinaryWithSecuredKafkaAndRedis)
}

func testBinaryWithSecuredKafkaAndRedis(t *testing.T, kafka string) {
	// kfake: tapwars is its super user. Apache Kafka: a user with only
	// the ACLs tapwars needs.
	var k testenv.Broker
	var caFile string
	switch kafka {
	case "kfake":
		pki := testenv.NewPKI(t)
		k = testenv.StartKafkaWith(t, 2, []kfake.Opt{
			kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "tapwars", "bin-kafka-pass-1"), kfake.TLS(pki.ServerTLS(false)),
		}, stream.Topic)
		caFile = pki.CAFile
	case "apache":
		ak := testenv.StartApacheKafka(t, testenv.ApacheKafkaOptions{SASL: true, ACLs: true})
		ak.CreateTopics(t, 2, stream.Topic)
		ak.AddUser(t, "tapwars", "bin-kafka-pass-1")
		ak.AllowApp(t, "tapwars")
		k, caFile = ak, ak.PKI().CAFile
	}
	r := testenv.StartRedisWith(t, testenv.RedisOptions{User: "tapwars", Password: "bin-redis-pass-2"})
	dir := t.TempDir()
	file := func(name, v string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	env := []string{
		"DATA_DIR=" + t.TempDir(), "REDIS_URL_FILE=" + file("redis-url", r.URL()),
		"KAFKA_BROKERS=" + strings.Join(k.Addrs(), ","), "KAFKA_SSL=true", "KAFKA_SSL_CA_PATH=" + caFile,
		"KAFKA_SASL_MECHANISM=scram-sha-512", "KAFKA_USERNAME=tapwars",
	}
	p := start(t, testenv.FreePort(t), append(env, "KAFKA_PASSWORD_FILE="+file("kafka-password", "bin-kafka-pass-1"))...)
	a := join(t, p.base, "ann")
	if code, body, err := post(p.base, "/api/tap", a.Token, `{"count":4}`); err != nil || code != http.StatusAccepted {
		t.Fatalf("tap: %d %s %v", code, body, err)
	}
	testenv.Eventually(t, 10*time.Second, func() string {
		if gs := gameState(t, p.base).GameState; gs.TotalTaps != 4 {
			return fmt.Sprintf("total %d", gs.TotalTaps)
		}
		return ""
	})
	p.term()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary)
	cmd.Env = append(os.Environ(), append(env, fmt.Sprintf("ADDR=127.0.0.1:%d", testenv.FreePort(t)),
		"SESSION_SECRET=binary-test-secret-123456", "KAFKA_PASSWORD_FILE="+file("wrong", "bin-wrong-pass-3"))...)
	begin := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(begin)
	if code := cmd.ProcessState.ExitCode(); code != 1 || ctx.Err() != nil {
		t.Fatalf("exit %d (%v) after %v, want 1 quickly:\n%s", code, err, took, out)
	}
	// kfake drops the connection, Apache Kafka answers that the
	// credentials are wrong: each message names the settings.
	for _, want := range []string{"tapwars: could not connect to Kafka at " + k.Addrs()[0], "KAFKA_USERNAME", "KAFKA_PASSWORD"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"bin-kafka-pass-1", "bin-redis-pass-2", "bin-wrong-pass-3"} {
		if strings.Contains(string(out)+p.log.String(), secret) {
			t.Errorf("a password shows in the output: %s", secret)
		}
	}
	t.Logf("exit 1 after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(string(out)))
}
