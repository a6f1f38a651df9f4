package app_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/tapwars/tapwars/app"
	"github.com/tapwars/tapwars/internal/testenv"
	"github.com/tapwars/tapwars/stream"
)

const (
	kafkaUser     = "tapwars-app"
	kafkaPassword = "kafka-pass-7f3e"
)

// securedKafka is a kfake broker secured one way, and the settings that
// reach it.
type securedKafka struct {
	k   testenv.Broker
	env map[string]string
}

// startSecuredKafka starts kfake with SASL mechanism mech (kfake's
// spelling, "" = none) for kafkaUser, and TLS when pki is set (requiring a
// client certificate when clientAuth).
func startSecuredKafka(t *testing.T, mech string, pki *testenv.PKI, clientAuth bool) securedKafka {
	t.Helper()
	var opts []kfake.Opt
	env := map[string]string{}
	if mech != "" {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(mech, kafkaUser, kafkaPassword))
		env["KAFKA_SASL_MECHANISM"] = strings.ToLower(mech)
		env["KAFKA_USERNAME"] = kafkaUser
		env["KAFKA_PASSWORD"] = kafkaPassword
	}
	if pki != nil {
		opts = append(opts, kfake.TLS(pki.ServerTLS(clientAuth)))
		env["KAFKA_SSL"] = "true"
		env["KAFKA_SSL_CA_PATH"] = pki.CAFile
		if clientAuth {
			env["KAFKA_SSL_CERT_PATH"] = pki.ClientCert
			env["KAFKA_SSL_KEY_PATH"] = pki.ClientKey
		}
	}
	return securedKafka{k: testenv.StartKafkaWith(t, 3, opts, stream.Topic), env: env}
}

// startSecuredApacheKafka starts Apache Kafka with SCRAM-SHA-512 over TLS
// and ACLs, and kafkaUser with the rights tapwars needs (not a super user).
func startSecuredApacheKafka(t *testing.T) securedKafka {
	t.Helper()
	k := testenv.StartApacheKafka(t, testenv.ApacheKafkaOptions{SASL: true, ACLs: true})
	k.CreateTopics(t, 3, stream.Topic)
	k.AddUser(t, kafkaUser, kafkaPassword)
	k.AllowApp(t, kafkaUser)
	return securedKafka{k: k, env: k.EnvAs(kafkaUser, kafkaPassword)}
}

// Taps go through a broker that demands SCRAM, TLS, mutual TLS, or both:
// produced, consumed and counted exactly, and the admin page's lag view
// (its own Kafka connection) reads the end offsets.
func TestSecuredKafka(t *testing.T) {
	pki := testenv.NewPKI(t)
	for _, tc := range []struct {
		name      string
		mech      string
		tls, mtls bool
		apache    bool              // real Apache Kafka with ACLs, as a user that is not a super user
		env       map[string]string // over the secured broker's settings
		log       string            // a line the log must have
	}{
		{name: "scram-sha-512", mech: "SCRAM-SHA-512"},
		{name: "scram-sha-256 over TLS", mech: "SCRAM-SHA-256", tls: true},
		{name: "plain over mutual TLS", mech: "PLAIN", tls: true, mtls: true},
		{name: "TLS without SASL", tls: true},
		{name: "apache: scram-sha-512 over TLS with ACLs", apache: true},
		{name: "TLS without verification", tls: true,
			env: map[string]string{"KAFKA_SSL_CA_PATH": "", "KAFKA_SSL_INSECURE_SKIP_VERIFY": "true"},
			log: "KAFKA_SSL_INSECURE_SKIP_VERIFY is set: the brokers' certificates are not checked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p *testenv.PKI
			if tc.tls {
				p = pki
			}
			var sk securedKafka
			if tc.apache {
				sk = startSecuredApacheKafka(t)
			} else {
				sk = startSecuredKafka(t, tc.mech, p, tc.mtls)
			}
			r := testenv.StartRedis(t)
			var logs syncBuf
			m := admInstance(t, r, sk.k, overlay(sk.env, tc.env), func(m *app.Main) { m.LogOutput = &logs })
			if !strings.Contains(logs.String(), tc.log) {
				t.Fatalf("the log lacks %q:\n%s", tc.log, logs.String())
			}
			base := m.URL()
			a, b := join(t, base, "ann"), join(t, base, "bob")
			for range 3 {
				tapN(t, base, a, 7)
				tapN(t, base, b, 2)
			}
			waitTotals(t, base, map[*joined]int64{&a: 21, &b: 6})
			var st struct {
				Partitions []struct {
					End, Applied int64
					Lag          int64 `json:"lag"`
				} `json:"partitions"`
			}
			testenv.Eventually(t, 10*time.Second, func() string {
				if code, body := admin(t, "GET", base+"/admin/stats?format=json", "", &st); code != 200 {
					return body
				}
				var end int64
				for _, p := range st.Partitions {
					if p.Lag != 0 {
						return fmt.Sprintf("lag %+v", st.Partitions)
					}
					end += p.End
				}
				if len(st.Partitions) != 3 || end != 8 { // two joins and six taps
					return fmt.Sprintf("partitions %+v, want 3 with 8 records in all", st.Partitions)
				}
				return ""
			})
			if code, body := readyz(t, base); code != 200 {
				t.Fatalf("readyz %d %v", code, body)
			}
		})
	}
}

// failedStart is a start of Main that failed: its error, how long it took
// and what it logged.
type failedStart struct {
	err  error
	took time.Duration
	logs string
}

// startExpectingError runs Main with env and returns its failed start.
func startExpectingError(t *testing.T, env map[string]string) failedStart {
	t.Helper()
	m := app.NewMain()
	if err := m.Config.Parse(nil, func(k string) string { return env[k] }, io.Discard); err != nil {
		t.Fatal(err)
	}
	var logs syncBuf
	m.LogOutput = &logs
	start := time.Now()
	err := m.Run(context.Background())
	took := time.Since(start)
	if err == nil {
		_ = m.Close()
		t.Fatal("started; want an error")
	}
	return failedStart{err, took, logs.String()}
}

// startFailsWith checks that Main with env fails to start within 10 s with
// an error saying every want, and that no secret shows in it or the log.
func startFailsWith(t *testing.T, env map[string]string, want []string, secrets ...string) {
	t.Helper()
	f := startExpectingError(t, env)
	msg, took, logs := f.err.Error(), f.took, f.logs
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("error %q\ndoes not say %q", msg, w)
		}
	}
	if took > 10*time.Second {
		t.Errorf("took %v to fail; want a fast failure", took)
	}
	for _, secret := range secrets {
		if strings.Contains(msg, secret) || strings.Contains(logs, secret) {
			t.Errorf("the password %q appears in the error or the log", secret)
		}
	}
	t.Logf("%v after %v", msg, took.Round(time.Millisecond))
}

// A wrong password, an untrusted certificate, a plaintext client at a TLS
// listener and TLS at a plaintext one each stop the start within seconds
// with a message that names the cause and the settings to check, and never
// the password.
func TestKafkaMisconfigurationFailsFast(t *testing.T) {
	pki, other := testenv.NewPKI(t), testenv.NewPKI(t)
	scram := startSecuredKafka(t, "SCRAM-SHA-512", nil, false)
	tlsOnly := startSecuredKafka(t, "", pki, false)
	mtls := startSecuredKafka(t, "", pki, true)
	plain := testenv.StartKafka(t, 1, stream.Topic)
	r := testenv.StartRedis(t)
	base := func(k testenv.Broker, env map[string]string) map[string]string {
		return overlay(map[string]string{
			"ADDR": "127.0.0.1:0", "DATA_DIR": t.TempDir(), "REDIS_URL": r.URL(),
			"KAFKA_BROKERS": strings.Join(k.Addrs(), ","), "SESSION_SECRET": "test-secret-0123456789",
		}, env)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"wrong password", base(scram.k, overlay(scram.env, map[string]string{"KAFKA_PASSWORD": "wrong-pass-91c2"})),
			[]string{"could not connect to Kafka at " + scram.k.Addrs()[0], "KAFKA_USERNAME/KAFKA_PASSWORD"}},
		{"wrong mechanism", base(scram.k, overlay(scram.env, map[string]string{"KAFKA_SASL_MECHANISM": "scram-sha-256"})),
			[]string{"could not connect to Kafka", "KAFKA_SASL_MECHANISM"}},
		{"no credentials at a SASL listener", base(scram.k, nil),
			[]string{"could not connect to Kafka", "may require SASL"}},
		{"untrusted certificate", base(tlsOnly.k, overlay(tlsOnly.env, map[string]string{"KAFKA_SSL_CA_PATH": other.CAFile})),
			[]string{"TLS certificate is not trusted", "signed by an unknown authority", "KAFKA_SSL_CA_PATH"}},
		{"plaintext at a TLS listener", base(tlsOnly.k, nil),
			[]string{"could not connect to Kafka", "may require TLS (set KAFKA_SSL=true)"}},
		{"TLS at a plaintext listener", base(plain, map[string]string{"KAFKA_SSL": "true"}),
			[]string{"did not answer the TLS handshake", "unset KAFKA_SSL"}},
		{"no client certificate for mutual TLS", base(mtls.k, overlay(mtls.env, map[string]string{"KAFKA_SSL_CERT_PATH": "", "KAFKA_SSL_KEY_PATH": ""})),
			[]string{"could not connect to Kafka", "certificate required", "KAFKA_SSL_CERT_PATH"}},
		{"username without mechanism", base(scram.k, map[string]string{"KAFKA_USERNAME": "u", "KAFKA_PASSWORD": "p-secret"}),
			[]string{"KAFKA_SASL_MECHANISM is not"}},
		{"unknown mechanism", base(scram.k, overlay(scram.env, map[string]string{"KAFKA_SASL_MECHANISM": "gssapi"})),
			[]string{"must be plain, scram-sha-256 or scram-sha-512"}},
		{"CA without KAFKA_SSL", base(tlsOnly.k, map[string]string{"KAFKA_SSL_CA_PATH": pki.CAFile}),
			[]string{"KAFKA_SSL_CA_PATH is set but KAFKA_SSL is not true"}},
		{"security with the embedded broker", overlay(base(plain, scram.env), map[string]string{"KAFKA_BROKERS": ""}),
			[]string{"set KAFKA_BROKERS"}},
	} {
		t.Run(tc.name, func(t *testing.T) { startFailsWith(t, tc.env, tc.want, kafkaPassword, "wrong-pass-91c2", "p-secret") })
	}
}

// When the broker stops accepting the credentials while the instance runs
// (a rotated password), /readyz says so.
func TestReadyzNamesKafkaAuthFailure(t *testing.T) {
	sk := startSecuredKafka(t, "SCRAM-SHA-512", nil, false)
	m := startApp(t, testenv.StartRedis(t), sk.k, sk.env, nil)
	if code, body := readyz(t, m.URL()); code != 200 { // startApp waited for it
		t.Fatalf("readyz %d %v", code, body)
	}
	// kfake keeps its SCRAM users in its data dir: forget them, as a
	// password change would.
	fake := sk.k.(*testenv.Kafka)
	fake.Stop()
	for _, f := range globAll(fake.Dir, "sasl.json") {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	fake.RestartWith([]kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", kafkaUser, "rotated-password")})
	testenv.Eventually(t, 15*time.Second, func() string {
		code, body := readyz(t, m.URL())
		if code != 503 || !strings.Contains(body["kafka"], "KAFKA_USERNAME/KAFKA_PASSWORD") || body["redis"] != "ok" {
			return fmt.Sprintf("%d %v", code, body)
		}
		if strings.Contains(body["kafka"], kafkaPassword) {
			t.Fatalf("readyz shows the password: %v", body)
		}
		t.Logf("readyz: %v", body)
		return ""
	})
}
