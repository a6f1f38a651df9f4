package views

import (
	"strconv"
	"unicode/utf8"
)

// Numbers on every page (shared by the game, leaderboard and presenter
// pages). The server renders a count as Number(n) in an element with
// class "num <NumFit>" and data-n="<n>"; app.js (formatCount) rewrites each
// such element in the viewer's locale and keeps its NumFit class right.
// A parent with class "fit" sizes the number's font to its own width
// (app.css, "numbers that fit"): a 7-digit score shrinks, it never wraps,
// overflows or covers its neighbours.

// Number is n with comma thousands separators ("9,999,999"), the page's
// text until app.js formats it in the viewer's locale.
func Number(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := n < 0
	if neg {
		s = s[1:]
	}
	b := make([]byte, 0, len(s)+len(s)/3+1)
	if neg {
		b = append(b, '-')
	}
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			b = append(b, ',')
		}
		b = append(b, s[i])
	}
	return string(b)
}

// NumFit is the class that tells app.css how many characters text takes
// ("num--w9" for "9,999,999"), so a "fit" parent can size it to its width.
func NumFit(text string) string {
	n := utf8.RuneCountInString(text)
	n = max(1, min(n, maxFitChars))
	return "num--w" + strconv.Itoa(n)
}

// maxFitChars is the longest number app.css has a width class for
// ("-9,999,999,999").
const maxFitChars = 14

// NumData is the data-n attribute value of a count: the raw number.
func NumData(n int64) string { return strconv.FormatInt(n, 10) }
