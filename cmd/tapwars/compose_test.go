package main_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tapwars/tapwars/internal/testenv"
)

// docker-compose.dev.yml is valid for docker-compose (when it is
// installed: .ci/run installs Debian's), gives the app only settings the
// binary knows, and probes it with -healthcheck; the Dockerfile builds a
// static binary onto a non-root distroless image with the same
// healthcheck. No Docker engine is needed.
func TestComposeAndDockerfile(t *testing.T) {
	root := filepath.Join("..", "..")
	compose := filepath.Join(root, "docker-compose.dev.yml")
	if _, err := exec.LookPath("docker-compose"); err == nil {
		out, err := exec.Command("docker-compose", "-f", compose, "config", "-q").CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose config: %v\n%s", err, out)
		}
	} else {
		t.Log("docker-compose not installed: only the static checks run")
	}

	b, err := os.ReadFile(compose)
	if err != nil {
		t.Fatal(err)
	}
	env, health := appService(t, string(b))
	help, _ := exec.Command(binary, "-h").CombinedOutput()
	for _, name := range []string{"REDIS_URL", "KAFKA_BROKERS", "SESSION_SECRET"} {
		if !env[name] {
			t.Errorf("the app service does not set %s", name)
		}
	}
	for name := range env {
		if !strings.Contains(string(help), "(env "+name+",") {
			t.Errorf("the app service sets %s, which tapwars does not read (see tapwars -h)", name)
		}
	}
	if !strings.Contains(health, `"/tapwars", "-healthcheck"`) {
		t.Errorf("app healthcheck %q does not run /tapwars -healthcheck", health)
	}
	for _, want := range []string{"image: redis:7-alpine", `"--appendonly", "yes"`, "redis_data:/data",
		"image: apache/kafka:", "KAFKA_PROCESS_ROLES: broker,controller", "CLUSTER_ID:",
		"--create --if-not-exists --topic game-taps --partitions", "condition: service_healthy",
		"condition: service_completed_successfully"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("docker-compose.dev.yml lacks %q", want)
		}
	}

	// The development stack runs the Kafka the tests run.
	if want := "image: apache/kafka:" + testenv.KafkaVersion() + "\n"; !strings.Contains(string(b), want) {
		t.Errorf("docker-compose.dev.yml does not pin %q, the version internal/testenv/kafka/pom.xml runs in the tests", strings.TrimSpace(want))
	}

	d, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, re := range []string{`(?m)^FROM golang:\S+ AS build$`, `CGO_ENABLED=0 go build`,
		`(?m)^FROM gcr\.io/distroless/static\S*:nonroot$`, `(?m)^USER (65532|nonroot)`,
		`(?m)^HEALTHCHECK .*CMD \["/tapwars", "-healthcheck"\]$`, `(?m)^ENTRYPOINT \["/tapwars"\]$`} {
		if !regexp.MustCompile(re).Match(d) {
			t.Errorf("Dockerfile does not match %s", re)
		}
	}
}

// appService returns the variable names under services.app.environment and
// the app's healthcheck test line (a small reader for this file's layout:
// two-space indents, environment as a map).
func appService(t *testing.T, yml string) (map[string]bool, string) {
	t.Helper()
	env := map[string]bool{}
	var health string
	inApp, inEnv := false, false
	sc := bufio.NewScanner(strings.NewReader(yml))
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		switch {
		case indent == 2:
			inApp, inEnv = trimmed == "app:", false
		case inApp && indent == 4:
			inEnv = trimmed == "environment:"
		case inApp && inEnv && indent == 6:
			name, _, ok := strings.Cut(trimmed, ":")
			if !ok {
				t.Fatalf("environment entry %q is not NAME: value", trimmed)
			}
			env[name] = true
		}
		if inApp && strings.HasPrefix(trimmed, "test:") {
			health = trimmed
		}
	}
	if len(env) == 0 {
		t.Fatal("no services.app.environment in docker-compose.dev.yml")
	}
	return env, health
}
