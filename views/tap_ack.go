package views

import (
	"bytes"
	"context"
	"strconv"
)

// AppendTapAck appends TapAck(seq, count) as templ renders it, for the
// answer every tap message over a page's socket gets; seq of anything but
// ASCII digits goes through templ (it escapes the attribute).
func AppendTapAck(dst []byte, seq string, count int) []byte {
	if !isDigits(seq) {
		b := bytes.NewBuffer(dst)
		_ = TapAck(seq, count).Render(context.Background(), b)
		return b.Bytes()
	}
	dst = append(dst, `<span id="tap-ack" hx-swap-oob="true" hidden data-seq="`...)
	dst = append(dst, seq...)
	dst = append(dst, `" data-count="`...)
	dst = strconv.AppendInt(dst, int64(count), 10)
	return append(dst, `"></span>`...)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
