package stream_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/tapwars/tapwars/game"
	"github.com/tapwars/tapwars/stream"
)

// FuzzDecodeEvent feeds any bytes to the event decoder the consumer runs on
// every record: it must never panic, must refuse with a *DecodeError and a
// known reason, and anything it accepts has a userId of 1–64 bytes and a
// count of 1–MaxBurst, and survives an encode/decode round trip.
func FuzzDecodeEvent(f *testing.F) {
	for _, seed := range []string{
		`{"id":"e","userId":"u1","username":"ann","team":"blue","timestamp":1764090000000,"sessionId":"s"}`,
		`{"userId":"u1","count":50}`, `{"userId":"u1","count":0}`, `{"userId":"u1","count":-5}`, `{"userId":"u1","count":1e9}`,
		`{"userId":"u1","count":1.5}`, `{"userId":"u1","count":"3"}`, `{"userId":""}`, `{"userId":null}`, `{}`, `[]`, `null`,
		`not json`, `{"userId":"` + strings.Repeat("x", 65) + `"}`, `{"userId":"u","team":"green","round":-1}`,
		`{"userId":"u","userId":"v"}`, `{"userId":"u1","count":2} trailing`, "\xff\xfe",
	} {
		f.Add([]byte(seed))
	}
	known := map[string]bool{stream.SkipTooLarge: true, stream.SkipMalformed: true, stream.SkipNoUser: true, stream.SkipBadCount: true}
	f.Fuzz(func(t *testing.T, value []byte) {
		ev, err := stream.DecodeEvent(value)
		if err != nil {
			var de *stream.DecodeError
			if !errors.As(err, &de) || !known[de.Reason] {
				t.Fatalf("DecodeEvent(%q): %v is not a DecodeError with a known reason", value, err)
			}
			return
		}
		if len(value) > stream.MaxEventBytes {
			t.Fatalf("accepted %d bytes", len(value))
		}
		if ev.UserID == "" || len(ev.UserID) > 64 {
			t.Fatalf("accepted userId %q", ev.UserID)
		}
		if ev.Count < 1 || ev.Count > game.MaxBurst || ev.Taps() != ev.Count {
			t.Fatalf("accepted count %d", ev.Count)
		}
		b, err := stream.EncodeEvent(ev)
		if err != nil {
			t.Fatalf("encode %+v: %v", ev, err)
		}
		if len(b) <= stream.MaxEventBytes {
			again, err := stream.DecodeEvent(b)
			if err != nil || again != ev {
				t.Fatalf("round trip of %+v gave %+v, %v", ev, again, err)
			}
		}
		var anyJSON any
		if json.Unmarshal(value, &anyJSON) != nil {
			t.Fatalf("accepted invalid JSON %q", value)
		}
	})
}
