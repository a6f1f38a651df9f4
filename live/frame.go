package live

// A frame: one state update, rendered once (render.go) for all clients.

import (
	"sync"
	"sync/atomic"

	"github.com/tapwars/tapwars/game"
)

// Frame is one state update. Its bytes are rendered once, by the first
// client that needs them (an instance without live clients renders
// nothing), and shared by every client of a format.
type Frame struct {
	Seq      uint64
	Snapshot game.Snapshot
	// board is the leaderboard the pages show: the snapshot's, or the one
	// before while Options.BoardInterval holds a change back.
	board   shownBoard
	status  Status
	prev    *Frame // the rendered frame before this one, for deltas; dropped once rendered
	prevSeq uint64

	delivery // how many of its clients have it, for pacing (pacing.go)

	once     sync.Once
	rendered atomic.Bool
	out      *Rendered
}

// Bytes is the frame as a client of format f receives it: the whole state.
func (f *Frame) Bytes(format Format) []byte {
	f.render()
	return f.out.Whole(format)
}

// Since is what a client of format f that was last sent frame seq needs: the
// parts that changed when seq is the frame before this one (possibly
// nothing), else the whole state.
func (f *Frame) Since(format Format, seq uint64) []byte {
	f.render()
	if seq == f.prevSeq {
		if d := f.out.Delta(format); d != nil {
			return d
		}
	}
	return f.out.Whole(format)
}

// render encodes every format once (Render). A rendering error (none is
// expected: the templates write to memory) leaves the frame empty, and
// clients skip it.
func (f *Frame) render() {
	f.once.Do(func() {
		defer f.rendered.Store(true)
		var prev *Rendered
		if f.prev != nil {
			prev = f.prev.out
		}
		f.prev = nil // keep no chain of old frames alive
		out, err := Render(prev, View{Snapshot: f.Snapshot, Board: f.board.entries, Status: f.status})
		if err != nil {
			out = &Rendered{}
		}
		f.out = out
	})
}
