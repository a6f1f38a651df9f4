// Command tapwars runs the game: `go run ./cmd/tapwars` serves it on :8080
// with an embedded broker and store under ./data; REDIS_URL and
// KAFKA_BROKERS switch to real Redis and Kafka. See README.md.
//
// `tapwars -healthcheck` asks the instance listening on ADDR for /readyz and
// exits 0 when it is ready, 1 otherwise: the container healthcheck of an
// image without curl.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tapwars/tapwars/app"
)

func main() {
	args, healthcheck := os.Args[1:], false
	if len(args) > 0 && (args[0] == "-healthcheck" || args[0] == "--healthcheck") {
		args, healthcheck = args[1:], true
	}
	m := app.NewMain()
	if err := m.Config.Parse(args, os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "tapwars:", err)
		os.Exit(2)
	}
	if healthcheck {
		os.Exit(checkReady(m.Config.Addr))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "tapwars:", err)
		os.Exit(1)
	}
	<-ctx.Done()
	stop() // a second Ctrl-C kills at once
	m.Log.Info("shutting down")
	done := make(chan error, 1)
	go func() { done <- m.Close() }()
	select {
	case err := <-done:
		if err != nil {
			m.Log.Error("shutdown", "err", err)
			os.Exit(1)
		}
	case <-time.After(10 * time.Second):
		m.Log.Error("shutdown took longer than 10 s; exiting")
		os.Exit(1)
	}
}

// checkReady GETs /readyz of the instance listening on addr (ADDR) over
// loopback and returns the exit code: 0 when ready, 1 otherwise.
func checkReady(addr string) int {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tapwars healthcheck: ADDR:", err)
		return 1
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Get("http://" + net.JoinHostPort(host, port) + "/readyz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "tapwars healthcheck:", err)
		return 1
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	if res.StatusCode != http.StatusOK {
		fmt.Fprintf(os.Stderr, "tapwars healthcheck: %s %s\n", res.Status, body)
		return 1
	}
	return 0
}
