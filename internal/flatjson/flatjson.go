// Package flatjson writes and reads the flat JSON objects of the tap path
// (a tap event, a token's claims) without reflection, byte for byte as
// encoding/json writes them. It only covers the common case: AppendString
// hands unusual strings to encoding/json, and a Reader reports false for
// anything but the exact layout it is told to expect, so callers fall back
// to encoding/json and every input still decodes as encoding/json decodes
// it.
package flatjson

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// plain are the bytes json.Marshal writes as they are: printable ASCII
// but for the quote, the backslash and its HTML escapes.
var plain = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = true
	}
	t['"'], t['\\'], t['<'], t['>'], t['&'] = false, false, false, false, false
	return t
}()

// AppendString appends s as a JSON string, as json.Marshal writes it (with
// its HTML escaping).
func AppendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plain[s[i]] {
			b, _ := json.Marshal(s) // a string always encodes
			return append(dst, b...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// AppendInt appends n as a JSON number.
func AppendInt(dst []byte, n int64) []byte { return strconv.AppendInt(dst, n, 10) }

// Reader reads one object whose members come in a known order, written
// without spaces, its strings without escapes. Each method reads the next
// member; after the first failure every call fails and End reports false.
type Reader struct {
	b     []byte
	i     int
	ok    bool
	first bool // no member read yet
}

// NewReader starts reading the object b.
func NewReader(b []byte) Reader {
	return Reader{b: b, i: 1, ok: len(b) > 0 && b[0] == '{', first: true}
}

// Next reports whether the next member is key (for optional members),
// without reading it.
func (r *Reader) Next(key string) bool {
	if !r.ok {
		return false
	}
	i := r.i
	if !r.first {
		if i >= len(r.b) || r.b[i] != ',' {
			return false
		}
		i++
	}
	n := len(key)
	return i+n+3 <= len(r.b) && r.b[i] == '"' && string(r.b[i+1:i+1+n]) == key && r.b[i+1+n] == '"' && r.b[i+2+n] == ':'
}

// member moves past `"key":` (and the comma before it).
func (r *Reader) member(key string) bool {
	if !r.Next(key) {
		r.ok = false
		return false
	}
	if !r.first {
		r.i++
	}
	r.first = false
	r.i += len(key) + 3
	return true
}

// String reads the member key, a string without escapes or control
// characters; a non-ASCII one must be valid UTF-8 (encoding/json would
// replace invalid bytes).
func (r *Reader) String(key string) string {
	if !r.member(key) {
		return ""
	}
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		r.ok = false
		return ""
	}
	start, ascii := r.i+1, true
	for i := start; i < len(r.b); i++ {
		switch c := r.b[i]; {
		case c == '"':
			s := r.b[start:i]
			if !ascii && !utf8.Valid(s) {
				r.ok = false
				return ""
			}
			r.i = i + 1
			return string(s)
		case c == '\\' || c < 0x20:
			r.ok = false
			return ""
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	r.ok = false
	return ""
}

// Int reads the member key, an integer as JSON writes one (no leading
// zeros, no fraction or exponent), of at most 18 digits so it cannot
// overflow an int64.
func (r *Reader) Int(key string) int64 {
	if !r.member(key) {
		return 0
	}
	i, neg := r.i, false
	if i < len(r.b) && r.b[i] == '-' {
		neg = true
		i++
	}
	start := i
	var n int64
	for ; i < len(r.b) && r.b[i] >= '0' && r.b[i] <= '9'; i++ {
		n = n*10 + int64(r.b[i]-'0')
	}
	if digits := i - start; digits == 0 || digits > 18 || (digits > 1 && r.b[start] == '0') {
		r.ok = false
		return 0
	}
	if i < len(r.b) && (r.b[i] == '.' || r.b[i] == 'e' || r.b[i] == 'E') {
		r.ok = false
		return 0
	}
	r.i = i
	if neg {
		n = -n
	}
	return n
}

// End reports whether the object ends here, at the end of the input, and
// every member before was read.
func (r *Reader) End() bool {
	return r.ok && r.i == len(r.b)-1 && r.b[r.i] == '}'
}
