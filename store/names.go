package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/rivo/uniseg"

	"github.com/tapwars/tapwars/game"
)

// freeNameScript returns the index (from 1) of the first of ARGV, each a
// name's keys, that no current player holds, or 0.
var freeNameScript = newLuaScript("free_name.lua", "names.lua")

// nameTaken is the answer to a join whose name clashes with a current
// player's, with a free name to try (not held for them: another may take
// it first, and then gets its own suggestion).
func (s *Store) nameTaken(ctx context.Context, name string) error {
	msg := fmt.Sprintf("the name %q is taken: a player in the game has it, or one that looks the same", name)
	if free := s.freeName(ctx, name); free != "" {
		msg += fmt.Sprintf("; %q is free", free)
	}
	return &game.Error{Code: game.ECONFLICT, Message: msg, Err: game.ErrNameTaken}
}

// freeName is name with the first number from 2 that makes it free, or ""
// (none of the first few, or Redis did not answer: the refusal stands
// without a suggestion).
func (s *Store) freeName(ctx context.Context, name string) string {
	var names []string
	args := []any{}
	for n := 2; n <= 20; n++ {
		c, err := game.NormalizeName(withNumber(name, n))
		if err != nil {
			continue
		}
		names = append(names, c)
		args = append(args, nameKeysArg(c))
	}
	if len(args) == 0 {
		return ""
	}
	i, err := freeNameScript.Run(ctx, s.rdb, freeNameScript.Keys(0), args...).Int()
	if err != nil || i < 1 || i > len(names) {
		return ""
	}
	return names[i-1]
}

// withNumber is name followed by " n", its end cut (whole characters) so
// that it stays within the name limits.
func withNumber(name string, n int) string {
	suffix := " " + strconv.Itoa(n)
	chars, bytes := game.MaxNameLen-len(suffix), game.MaxNameBytes-len(suffix)
	out, state := "", -1
	for rest := name; rest != ""; {
		var c string
		c, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if chars == 0 || len(out)+len(c) > bytes {
			break
		}
		out += c
		chars--
	}
	return out + suffix
}

// holdNamesScript gives each player of ARGV (id, name keys)* the keys no
// other current player holds.
var holdNamesScript = newLuaScript("hold_names.lua", "names.lua")

// HoldNames fills KeyNames from the players in Redis when it does not
// exist while players do: a state written before names were unique (an
// older version, or the old game). It reports how many players it read.
func (s *Store) HoldNames(ctx context.Context) (int, error) {
	if n, err := s.rdb.Exists(ctx, KeyNames).Result(); err != nil || n > 0 {
		return 0, err
	}
	read := 0
	iter := s.rdb.HScan(ctx, KeyUsers, 0, "", 500).Iterator()
	args := make([]any, 0, 1000)
	flush := func() error {
		if len(args) == 0 {
			return nil
		}
		err := holdNamesScript.Run(ctx, s.rdb, holdNamesScript.Keys(0), args...).Err()
		args = args[:0]
		return err
	}
	for iter.Next(ctx) {
		id := iter.Val()
		if !iter.Next(ctx) {
			break
		}
		var u game.User
		if json.Unmarshal([]byte(iter.Val()), &u) != nil || u.Username == "" {
			continue
		}
		read++
		args = append(args, id, nameKeysArg(u.Username))
		if len(args) >= 1000 {
			if err := flush(); err != nil {
				return read, fmt.Errorf("hold names: %w", err)
			}
		}
	}
	if err := iter.Err(); err != nil {
		return read, fmt.Errorf("hold names: %w", err)
	}
	if err := flush(); err != nil {
		return read, fmt.Errorf("hold names: %w", err)
	}
	return read, nil
}
