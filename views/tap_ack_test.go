package views

import (
	"bytes"
	"context"
	"testing"
)

// AppendTapAck writes what the TapAck template renders, escapes included.
func TestAppendTapAckIsTheTemplate(t *testing.T) {
	for _, seq := range []string{"", "1", "0042", "18446744073709551616", "abc", `"><script>`, "a&b", "é"} {
		for _, count := range []int{1, 100, -3} {
			var want bytes.Buffer
			if err := TapAck(seq, count).Render(context.Background(), &want); err != nil {
				t.Fatal(err)
			}
			if got := AppendTapAck([]byte("x"), seq, count); string(got) != "x"+want.String() {
				t.Errorf("AppendTapAck(%q, %d) = %s, want x%s", seq, count, got, want.String())
			}
		}
	}
}
