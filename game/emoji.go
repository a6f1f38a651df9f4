package game

import (
	"strings"
	"unicode"

	"github.com/rivo/uniseg"
)

// Emoji sequences (UTS #51) are built with characters that PRECIS refuses
// everywhere, since elsewhere they are invisible: the variation selectors
// that ask for emoji or text style (❤️ is ❤ + U+FE0F), the zero-width
// joiner between emoji (👩‍💻, 🏳️‍🌈, 🏃‍♀️) and the tag characters of
// subdivision flags (🏴 + tags + cancel tag). A name may hold them inside
// one emoji, as its grapheme cluster, and nowhere else: NormalizeName checks
// the name with them taken out, then puts them back where they were.

const (
	textStyle       = '\ufe0e'
	emojiStyle      = '\ufe0f'
	zeroWidthJoiner = '\u200d'
	keycap          = '\u20e3' // 1️⃣ is 1 + U+FE0F + U+20E3
	blackFlag       = '\U0001F3F4'
	firstTag        = '\U000E0020'
	cancelTag       = '\U000E007F'
)

// emojiPart reports whether r may appear in a name only inside an emoji.
func emojiPart(r rune) bool {
	return r == textStyle || r == emojiStyle || r == zeroWidthJoiner || (r >= firstTag && r <= cancelTag)
}

// emojiSequence reports whether the grapheme cluster c is one emoji whose
// selectors, joiners and tags may stay: it starts with a symbol (or is a
// keycap), a selector follows neither a selector, a joiner nor a tag, every
// joiner is followed by a symbol, and tags follow a black flag and end with
// the cancel tag.
func emojiSequence(c string) bool {
	runes := []rune(c)
	first := runes[0]
	if !unicode.Is(unicode.So, first) && !(strings.ContainsRune("0123456789#*", first) && strings.ContainsRune(c, keycap)) {
		return false
	}
	tags := false
	for i, r := range runes {
		switch {
		case r == zeroWidthJoiner:
			if i+1 == len(runes) || !unicode.Is(unicode.So, runes[i+1]) {
				return false
			}
		case r == textStyle || r == emojiStyle:
			if emojiPart(runes[i-1]) {
				return false
			}
		case r >= firstTag && r <= cancelTag:
			tags = true
		}
	}
	return !tags || first == blackFlag && runes[len(runes)-1] == cancelTag
}

// writtenEmoji is one emoji of a name: as written, and without its
// selectors, joiners and tags.
type writtenEmoji struct{ written, plain string }

// plainEmoji returns name with the selectors, joiners and tags of its emoji
// taken out, and its emoji in order.
func plainEmoji(name string) (string, []writtenEmoji) {
	var plain strings.Builder
	var emoji []writtenEmoji
	state := -1
	for rest := name; rest != ""; {
		var c string
		c, rest, _, state = uniseg.FirstGraphemeClusterInString(rest, state)
		if !strings.ContainsFunc(c, emojiPart) || !emojiSequence(c) {
			if first := []rune(c)[0]; unicode.Is(unicode.So, first) {
				emoji = append(emoji, writtenEmoji{c, c})
			}
			plain.WriteString(c)
			continue
		}
		p := strings.Map(func(r rune) rune {
			if emojiPart(r) {
				return -1
			}
			return r
		}, c)
		emoji = append(emoji, writtenEmoji{c, p})
		plain.WriteString(p)
	}
	return plain.String(), emoji
}

// restoreEmoji puts the emoji as written back into out, the normalised
// plain name. Each is looked for after the one before it, so two emoji that
// differ only in their selectors or joiners keep their own; one that the
// normalisation changed (™️ becomes TM) stays as it became.
func restoreEmoji(out string, emoji []writtenEmoji) string {
	var b strings.Builder
	from := 0
	for _, e := range emoji {
		i := strings.Index(out[from:], e.plain)
		if i < 0 {
			continue
		}
		b.WriteString(out[from : from+i])
		b.WriteString(e.written)
		from += i + len(e.plain)
	}
	b.WriteString(out[from:])
	return b.String()
}
