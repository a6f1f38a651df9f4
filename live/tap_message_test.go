package live

import (
	"bytes"
	"testing"
)

func TestReadTapMessage(t *testing.T) {
	for _, tc := range []struct {
		msg     string
		n       int
		seq     string
		refused string // the error's message, "" when read
	}{
		{msg: `{"count":1,"seq":7}`, n: 1, seq: `7`},
		{msg: `{"count":25,"seq":123456789012345678}`, n: 25, seq: `123456789012345678`},
		{msg: `{"seq":7,"count":3}`, n: 3, seq: `7`},
		{msg: `{"count":"4","seq":"a-1"}`, n: 4, seq: `"a-1"`},
		{msg: ` { "count" : 2 , "seq" : 9 } `, n: 2, seq: `9`},
		{msg: `{"seq":5}`, n: 1, seq: `5`},
		{msg: `{"count":0,"seq":1}`, n: 0, seq: `1`},
		{msg: `{"count":-2,"seq":1}`, n: -2, seq: `1`},
		{msg: `{"count":1,"seq":0}`, n: 1, seq: `0`},
		{msg: `{"count":1,"seq":-0}`, n: 1, seq: `-0`},
		{msg: `{"count":1.5,"seq":2}`, seq: `2`, refused: "count"},
		{msg: `{"count":1234567890123456789012,"seq":2}`, seq: `2`, refused: "count"},
		{msg: `tap`, refused: "must be a tap"},
		{msg: `[1]`, refused: "must be a tap"},
		{msg: `{"count":1,"seq":"` + string(bytes.Repeat([]byte("x"), wsMaxSeq)) + `"}`, refused: "seq must be"},
	} {
		m, err := readTapMessage([]byte(tc.msg))
		if tc.refused != "" {
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.refused)) {
				t.Errorf("%s: err %v, want one about %q", tc.msg, err, tc.refused)
			}
		} else if err != nil || m.n != tc.n {
			t.Errorf("%s: n %d err %v, want %d", tc.msg, m.n, err, tc.n)
		}
		if string(m.Seq) != tc.seq {
			t.Errorf("%s: seq %s, want %s", tc.msg, m.Seq, tc.seq)
		}
	}
}

// The page's messages are read without reflection; whatever that path
// accepts, encoding/json reads the same.
func FuzzReadTapMessage(f *testing.F) {
	for _, s := range []string{`{"count":1,"seq":7}`, `{"count":-3,"seq":01}`, `{"count":1,"seq":7} `, `{"count":1,"seq":7,"x":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		got, gotErr := readTapMessage(msg)
		want, wantErr := decodeTapMessage(msg)
		if (gotErr == nil) != (wantErr == nil) || got.n != want.n || !bytes.Equal(got.Seq, want.Seq) {
			t.Fatalf("%q: read n=%d seq=%s err=%v; encoding/json n=%d seq=%s err=%v", msg, got.n, got.Seq, gotErr, want.n, want.Seq, wantErr)
		}
	})
}
