package views

import (
	"regexp"
	"strings"
	"testing"
)

func TestNumber(t *testing.T) {
	for n, want := range map[int64]string{
		0: "0", 7: "7", 999: "999", 1000: "1,000", 3411: "3,411", 999999: "999,999",
		1000000: "1,000,000", 9999999: "9,999,999", 19999998: "19,999,998", -1234: "-1,234",
	} {
		if got := Number(n); got != want {
			t.Errorf("Number(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestNumFit(t *testing.T) {
	for text, want := range map[string]string{
		"0": "num--w1", "3,411": "num--w5", "9,999,999": "num--w9", "–": "num--w1", "": "num--w1",
		"99,999,999,999,999": "num--w14",
	} {
		if got := NumFit(text); got != want {
			t.Errorf("NumFit(%q) = %q, want %q", text, got, want)
		}
	}
}

// The first number after a counter's id is its raw value (cmd/tapbench reads
// the total so), though the text is "12,345" and a width class follows.
func TestCounterRawValueFirst(t *testing.T) {
	frag := render(t, counter("total-taps", 12345, true))
	m := regexp.MustCompile(`id="total-taps"\D*(\d+)`).FindStringSubmatch(frag)
	if m == nil || m[1] != "12345" || !strings.Contains(frag, ">12,345<") {
		t.Fatalf("counter renders %s", frag)
	}
}
