package live

// Reading the state into frames: the hub's one reader, the link status
// (status.go) and the leaderboard's hold (pacing.go).

import (
	"context"
	"reflect"
	"time"

	"github.com/tapwars/tapwars/game"
)

// Refresh reads the state, renders a frame and wakes every client.
func (h *Hub) Refresh(ctx context.Context) error { return h.refresh(ctx, false) }

// refresh is Refresh; with skipSame it sends nothing when the state did not
// change (the idle re-read).
func (h *Hub) refresh(ctx context.Context, skipSame bool) error {
	// One refresh at a time (Run and a first connect can both call it), so
	// an older read is never stored over a newer one.
	h.refreshMu.Lock()
	defer h.refreshMu.Unlock()
	snap, err := h.src.Snapshot(ctx, h.opt.LeaderboardN, time.Now())
	catching := err == nil && h.opt.CatchingUp != nil && h.opt.CatchingUp()
	t := h.step(err == nil, catching)
	old := h.last.Load()
	if err != nil {
		// Going down, every client is sent the last frame again with the
		// status in front, so pages keep the numbers they had, marked
		// "reconnecting"; no state frame is sent while down, and clients
		// that connect meanwhile get the same.
		if t.Publish() && old != nil {
			h.publish(&Frame{Seq: h.seq.Add(1), Snapshot: old.Snapshot, board: old.board, status: t.Status})
		}
		return err
	}
	if t.To == LinkCatchingUp {
		// While the state is rebuilt from the log, pages never go back:
		// a snapshot behind the one shown is held back, and every frame
		// is marked "catching up".
		if old != nil && behind(snap.GameState, old.Snapshot.GameState) {
			snap = old.Snapshot
		}
		if old != nil && old.status == t.Status && sameState(old.Snapshot, snap) {
			return nil // the pages show this already
		}
	} else if skipSame && !t.Changed() && old != nil && sameState(old.Snapshot, snap) {
		return nil
	}
	f := h.next(old, snap, time.Now())
	if t.Status != StatusNone {
		f.status, f.prev = t.Status, nil
	}
	h.publish(f)
	return nil
}

// step moves the link after a read (Link.Step) and logs a change.
func (h *Hub) step(readOK, catching bool) Transition {
	t := h.link.Step(readOK, catching)
	h.link = t.To
	h.down.Store(t.To == LinkDown)
	switch {
	case !t.Changed():
	case t.To == LinkDown:
		h.log.Warn("live updates paused: the store does not answer; clients show reconnecting")
	case t.To == LinkCatchingUp:
		h.log.Info("the state is being rebuilt from the log; clients show catching up")
	case t.From == LinkCatchingUp:
		h.log.Info("live updates resumed: the state is rebuilt")
	default:
		h.log.Info("live updates resumed")
	}
	return t
}

// next makes the frame that follows old (nil: none) for snap. The pages'
// leaderboard keeps old's while it changed less than BoardInterval ago;
// boardDue then tells Run when to show the held-back one.
func (h *Hub) next(old *Frame, snap game.Snapshot, now time.Time) *Frame {
	f := &Frame{Seq: h.seq.Add(1), Snapshot: snap, board: shownBoard{snap.Leaderboard, now}}
	h.boardDue.Store(0)
	if old == nil {
		return f
	}
	if old.rendered.Load() {
		f.prev, f.prevSeq = old, old.Seq
	}
	var due time.Time
	f.board, due = old.board.next(snap.Leaderboard, now, boardHold(h.opt.BoardInterval, time.Duration(h.gap.Load())))
	if !due.IsZero() {
		h.boardDue.Store(due.UnixNano())
	}
	return f
}

// behind reports whether a shows less of the game than b: an earlier round,
// or fewer taps of a team in the same round (a new round starts at zero).
func behind(a, b game.State) bool {
	return a.Round < b.Round || a.Round == b.Round && (a.BlueScore < b.BlueScore || a.RedScore < b.RedScore)
}

// sameState reports whether two snapshots show the same game. LastUpdated
// is left out: it is "now" for a game that never changed.
func sameState(a, b game.Snapshot) bool {
	a.GameState.LastUpdated, b.GameState.LastUpdated = 0, 0
	return reflect.DeepEqual(a, b)
}

// first is the newest frame, read now if there is none yet: clients that
// connect together before the first frame share one read.
func (h *Hub) first(ctx context.Context) (*Frame, error) {
	if f := h.Latest(); f != nil {
		return f, nil
	}
	h.firstMu.Lock()
	defer h.firstMu.Unlock()
	if f := h.Latest(); f != nil {
		return f, nil
	}
	if err := h.Refresh(ctx); err != nil {
		return nil, err
	}
	return h.Latest(), nil
}
