package game

import (
	"encoding/json"
	"testing"
)

// FuzzTapEventJSON: AppendJSON writes json.Marshal's bytes, and
// ReadTapEvent reads back every event whose strings need no escaping.
func FuzzTapEventJSON(f *testing.F) {
	f.Add("0123456789abcdef0123456789abcdef", "u1", "ann", "blue", int64(1764090000000), "s1", 0, int64(0))
	f.Add("e", "u", "Zoë 🐱", "red", int64(-1), "", 50, int64(7))
	f.Add("e", "u", `<b>"x"&\`, "green", int64(0), "s", -3, int64(-2))
	f.Add("\xff", "u\x00", "a\u2028", "", int64(1<<62), "s\t", 1, int64(1))
	f.Fuzz(func(t *testing.T, id, user, name, team string, ts int64, session string, count int, round int64) {
		e := TapEvent{ID: id, UserID: user, Username: name, Team: Team(team), Timestamp: ts, SessionID: session, Count: count, Round: round}
		want, _ := json.Marshal(e)
		got := e.AppendJSON(nil)
		if string(got) != string(want) {
			t.Fatalf("AppendJSON %s, json.Marshal %s", got, want)
		}
		back, ok := ReadTapEvent(got)
		if ok && back != e {
			t.Fatalf("ReadTapEvent(%s) = %+v, want %+v", got, back, e)
		}
		plain := func(s string) bool {
			q, _ := json.Marshal(s)
			return string(q) == `"`+s+`"`
		}
		digits := func(n int64) bool { return n > -1e18 && n < 1e18 }
		if !ok && plain(id) && plain(user) && plain(name) && plain(team) && plain(session) && digits(ts) && digits(int64(count)) && digits(round) {
			t.Fatalf("ReadTapEvent refused %s", got)
		}
	})
}

func TestReadTapEventRefusesZeroCountAndRound(t *testing.T) {
	for _, s := range []string{
		`{"id":"e","userId":"u","username":"a","team":"red","timestamp":1,"sessionId":"s","count":0}`,
		`{"id":"e","userId":"u","username":"a","team":"red","timestamp":1,"sessionId":"s","round":0}`,
		`{"id":"e","userId":"u","username":"a","team":"red","timestamp":1,"sessionId":"s","round":1,"count":2}`,
		`{"userId":"u","count":2}`,
	} {
		if e, ok := ReadTapEvent([]byte(s)); ok {
			t.Errorf("ReadTapEvent(%s) = %+v: AppendJSON never writes it", s, e)
		}
	}
}
