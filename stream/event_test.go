package stream

import (
	"errors"
	"testing"

	"github.com/tapwars/tapwars/game"
)

// FuzzDecodeEventFastPath: DecodeEvent (which reads this app's own records
// without reflection) and encoding/json agree on every value: the same
// event, or a refusal for the same reason.
func FuzzDecodeEventFastPath(f *testing.F) {
	for _, ev := range []game.TapEvent{
		{ID: "0123456789abcdef0123456789abcdef", UserID: "u1", Username: "ann", Team: game.Blue, Timestamp: 1764090000000, SessionID: "s"},
		{ID: "e", UserID: "u1", Username: "Zoë 🐱", Team: game.Red, Timestamp: 1, Count: 50, Round: 3},
		{ID: "e", UserID: "u1", Username: "<b>", Team: game.Red, Count: 51},
		{ID: "e", UserID: "", Username: "a", Count: -1},
	} {
		b, _ := EncodeEvent(ev)
		f.Add(b)
	}
	f.Add([]byte(`{"id":"e","userId":"u","username":"a","team":"red","timestamp":1,"sessionId":"s","count":0}`))
	f.Add([]byte(`{"id":"e","userId":"u","username":"a","team":"red","timestamp":1,"sessionId":"s","type":"join"}`))
	f.Fuzz(func(t *testing.T, value []byte) {
		got, gerr := DecodeEvent(value)
		want, werr := decodeEventJSON(value)
		if len(value) > MaxEventBytes {
			return
		}
		if got != want || reason(gerr) != reason(werr) {
			t.Fatalf("%q: DecodeEvent %+v, %v; encoding/json %+v, %v", value, got, gerr, want, werr)
		}
	})
}

func reason(err error) string {
	var de *DecodeError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &de):
		return de.Reason
	}
	return err.Error()
}
