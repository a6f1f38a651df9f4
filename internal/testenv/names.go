package testenv

import "strings"

// LongestName is a legal name at every limit at once: 24 characters and
// 320 bytes (game.MaxNameBytes), with the characters JSON escapes to six
// bytes (<, >, &) and two (") and emoji sequences of 25 bytes each.
var LongestName = `<&>"` + strings.Repeat("👨\u200d👩\u200d👧\u200d👦", 12) + strings.Repeat("é", 8)
