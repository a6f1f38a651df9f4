// Command tapwars runs the game: `go run ./cmd/tapwars` serves it on :8080
// with an embedded broker and store under ./data; REDIS_URL and
// KAFKA_BROKERS switch to real Redis and Kafka. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/tapwars/tapwars/app"
)

func main() {
	m := app.NewMain()
	if err := m.Config.Parse(os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "tapwars:", err)
		os.Exit(2)
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
