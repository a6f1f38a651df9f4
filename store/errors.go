package store

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tapwars/tapwars/game"
)

// outageMsg is what a person sees when Redis does not answer.
const outageMsg = "the game's store (Redis) did not answer in time; please try again in a moment"

// classify turns an error of Redis that means "not reachable, not now" into
// a game.EUNAVAILABLE error (its cause kept for logs); any other error is
// returned as it is.
func classify(err error) error {
	if err == nil || errors.Is(err, redis.Nil) {
		return err
	}
	var ge *game.Error
	if errors.As(err, &ge) {
		return err
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne), errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, redis.ErrClosed), errors.Is(err, redis.ErrPoolTimeout):
		return game.Wrap(err, game.EUNAVAILABLE, outageMsg)
	}
	// Replies of a server that is up but cannot serve writes or reads yet
	// (loading its data, a replica after a failover, a cluster re-sharding).
	msg := err.Error()
	for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN"} {
		if strings.HasPrefix(msg, p) {
			return game.Wrap(err, game.EUNAVAILABLE, outageMsg)
		}
	}
	return err
}

// outageHook classifies every command's error where Redis returns it, so
// callers of the store never guess from network errors.
type outageHook struct{}

func (outageHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (outageHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if c := classify(err); c != err {
			cmd.SetErr(c)
			return c
		}
		return err
	}
}

func (outageHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if c := classify(cmd.Err()); c != cmd.Err() {
				cmd.SetErr(c)
			}
		}
		return classify(err)
	}
}
