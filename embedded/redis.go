// Package embedded runs the two servers tapwars needs inside (or beside) its
// own process, persisted under a data directory, so that `go run
// ./cmd/tapwars` works on a machine that has only Go:
//
//   - a Redis-protocol store: a redis-server child process with AOF when one
//     is on PATH, otherwise a plain in-process miniredis that keeps nothing:
//     the game's state is a projection of the Kafka log, which tapwars
//     rebuilds by itself on start (from the newest checkpoint and the log
//     after it);
//   - a Kafka-protocol broker: franz-go's kfake with its data directory,
//     which holds the truth.
package embedded

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/alicebob/miniredis/v2"
)

// Store kinds, as returned by Redis.Kind and accepted as RedisOptions.Mode.
const (
	KindRedisServer = "redis-server"
	KindMemory      = "memory"
	ModeAuto        = "auto"
)

// RedisOptions configures StartRedis.
type RedisOptions struct {
	// Dir is the persistence directory (created if missing), e.g.
	// DATA_DIR/redis. A directory keeps the kind of store that created it.
	Dir string
	// Mode is "auto" (the default: redis-server if it is on PATH, else
	// in-process), "redis-server" or "memory" (in-process miniredis).
	Mode string
	// Logger receives warnings and debug information; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Redis is a running Redis-protocol store.
type Redis struct {
	kind string
	url  string

	mem *miniredis.Miniredis
	srv *redisServer

	closeOnce sync.Once
	closeErr  error
}

// URL is the address for redis.ParseURL: redis://127.0.0.1:PORT/0.
func (r *Redis) URL() string { return r.url }

// Kind is "redis-server" or "memory".
func (r *Redis) Kind() string { return r.kind }

// Close shuts the store down gracefully: redis-server gets SHUTDOWN (which
// fsyncs its AOF); the in-process store stops. Safe to call more than once.
func (r *Redis) Close() error {
	r.closeOnce.Do(func() {
		switch {
		case r.mem != nil:
			r.mem.Close()
		case r.srv != nil:
			r.closeErr = r.srv.shutdown()
		}
	})
	return r.closeErr
}

const engineFile = "ENGINE"

// dirKind tells which kind of store wrote dir, or "" for a fresh one.
func dirKind(dir string) string {
	if b, err := os.ReadFile(filepath.Join(dir, engineFile)); err == nil {
		return strings.TrimSpace(string(b))
	}
	if _, err := os.Stat(filepath.Join(dir, "appendonlydir")); err == nil {
		return KindRedisServer
	}
	return ""
}

// StartRedis starts a Redis-protocol store persisted in o.Dir and returns
// once it answers.
func StartRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	dir, logger, err := prepare("redis", o.Dir, o.Logger)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	have := dirKind(dir)
	_, lookErr := exec.LookPath("redis-server")
	mode := o.Mode
	if mode == "" {
		mode = ModeAuto
	}
	var kind string
	switch mode {
	case ModeAuto:
		switch {
		case have != "":
			kind = have
			if kind == KindRedisServer && lookErr != nil {
				return nil, fmt.Errorf("embedded redis: %s holds redis-server data but redis-server is not on PATH (%v); install it, or use another directory", dir, lookErr)
			}
		case lookErr == nil:
			kind = KindRedisServer
		default:
			kind = KindMemory
		}
	case KindRedisServer, KindMemory:
		kind = mode
		if have != "" && have != kind {
			return nil, fmt.Errorf("embedded redis: %s holds data of a %s store, not %s; use Mode %q or another directory", dir, have, kind, have)
		}
	default:
		return nil, fmt.Errorf("embedded redis: unknown Mode %q (want auto, redis-server or memory)", mode)
	}

	r := &Redis{kind: kind}
	switch kind {
	case KindRedisServer:
		rs, err := startRedisServer(ctx, dir, logger)
		if err != nil && mode == ModeAuto && have == "" {
			logger.Warn("embedded redis: redis-server did not start; using the in-process store", "err", err)
			kind, r.kind = KindMemory, KindMemory
		} else if err != nil {
			return nil, err
		} else {
			r.srv = rs
			r.url = fmt.Sprintf("redis://127.0.0.1:%d/0", rs.port)
		}
	}
	if kind == KindMemory {
		// Plain miniredis: the state is rebuilt from the log on every start.
		m := miniredis.NewMiniRedis()
		if err := m.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("embedded redis: %w", err)
		}
		r.mem = m
		r.url = fmt.Sprintf("redis://%s/0", m.Addr())
		logger.Info("embedded redis: in-process store ready (empty: the state is rebuilt from the log)", "addr", m.Addr())
	}
	if have != kind {
		if err := writeFileAtomic(dir, engineFile, []byte(kind+"\n")); err != nil {
			r.Close()
			return nil, fmt.Errorf("embedded redis: %w", err)
		}
	}
	return r, nil
}

// prepare checks and creates the data directory of an embedded server and
// picks its logger.
func prepare(kind, dir string, logger *slog.Logger) (string, *slog.Logger, error) {
	if dir == "" {
		return "", nil, fmt.Errorf("embedded %s: Dir is required", kind)
	}
	if logger == nil {
		logger = slog.Default()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("embedded %s: %w", kind, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", nil, fmt.Errorf("embedded %s: %w", kind, err)
	}
	return abs, logger, nil
}

// writeFileAtomic writes dir/name through a synced temporary file and a
// rename, so a crash leaves the old file or the new one.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, name+".tmp-*")
	if err != nil {
		return err
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // a no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmpName, filepath.Join(dir, name)); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
