package game

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mtibben/confusables"
	"github.com/rivo/uniseg"
	"golang.org/x/text/cases"
	"golang.org/x/text/secure/precis"
)

var (
	adjectives = []string{"Swift", "Mighty", "Brave", "Zippy", "Fuzzy", "Turbo", "Cosmic", "Sneaky", "Jolly", "Fierce",
		"Lucky", "Nimble", "Rapid", "Bouncy", "Wild", "Sparky", "Clever", "Dizzy", "Bold", "Funky"}
	animals = []string{"Otter", "Panda", "Falcon", "Tiger", "Gecko", "Badger", "Koala", "Lynx", "Moose", "Yak",
		"Narwhal", "Puffin", "Wombat", "Ferret", "Llama", "Octopus", "Raccoon", "Hedgehog", "Lemur", "Walrus"}
)

// FunName returns a generated player name such as "Turbo Otter 42", used
// when a player joins without choosing one. It always satisfies NormalizeName.
func FunName() string {
	return fmt.Sprintf("%s %s %d", adjectives[rand.IntN(len(adjectives))], animals[rand.IntN(len(animals))], rand.IntN(100))
}

// MaxNameLen is the longest username, in user-perceived characters
// (grapheme clusters: "👍🏽" or "é" written as e + accent count as one).
const MaxNameLen = 24

// MaxNameBytes is the longest username in bytes of UTF-8, as stored: one
// "character" can be a long emoji sequence (2,270 emoji joined by
// zero-width joiners are one grapheme cluster). 320 bytes take 24 of most
// emoji sequences (👩‍💻 is 11 bytes) or of any alphabet's letters with
// their marks, and a name of 320 bytes, even JSON-escaped, fits a player's
// token (auth.MaxUserSize), every log record (stream.MaxEventBytes) and
// every live frame many times over.
const MaxNameBytes = 320

// maxMarkRun is the most combining marks that may follow one another: real
// scripts stack two or three (Vietnamese, Indic, Tibetan); more is the
// "Zalgo" trick of text that spills over the lines around it.
const maxMarkRun = 4

// ErrInvalidName is the family of refused names; errors.Is(err,
// ErrInvalidName) holds for each of the messages below.
var ErrInvalidName = Errorf(EINVALID, "username must be 1 to %d characters", MaxNameLen)

// ErrNameTaken says that a current player has the name, or one that looks
// the same (NameKeys); errors.Is holds for the store's 409 that suggests a
// free one.
var ErrNameTaken = Errorf(ECONFLICT, "that name is taken")

func nameError(format string, args ...any) error {
	return &Error{Code: EINVALID, Message: fmt.Sprintf(format, args...), Err: ErrInvalidName}
}

func nameTooLong(n int) error {
	return nameError("your name is too long: at most %d bytes of text (emoji and some alphabets take several bytes a character; it has %d)", MaxNameBytes, n)
}

// NormalizeName normalises a username with the Nickname profile of PRECIS
// (RFC 8266: width and compatibility forms folded, spaces trimmed and
// collapsed, controls and invisible formatting characters refused, joiners
// only where a script needs them) and checks what that profile leaves to
// applications: a length in user-perceived characters, at least one
// visible letter, digit or symbol, no long runs of combining marks, and no
// word that mixes look-alike scripts ("аdmin" with a Cyrillic "а"). Emoji
// keep the selectors and joiners PRECIS refuses elsewhere (emoji.go).
func NormalizeName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", nameError("your name is not valid text (UTF-8)")
	}
	if len(name) > 4*MaxNameBytes { // not worth normalising (spaces trimmed and width folded never shrink it below)
		return "", nameTooLong(len(name))
	}
	plain, emoji := plainEmoji(name)
	out, err := precis.Nickname.String(plain)
	switch {
	case strings.TrimSpace(name) == "":
		return "", nameError("choose a name: 1 to %d characters", MaxNameLen)
	case err != nil:
		return "", nameError("your name contains a character that names cannot have (a control, invisible or formatting character)")
	}
	out = restoreEmoji(out, emoji)
	if n := uniseg.GraphemeClusterCount(out); n > MaxNameLen {
		return "", nameError("your name is too long: at most %d characters (it has %d)", MaxNameLen, n)
	}
	if len(out) > MaxNameBytes {
		return "", nameTooLong(len(out))
	}
	visible, marks := false, 0
	for _, r := range out {
		if unicode.Is(unicode.M, r) {
			if marks++; marks > maxMarkRun {
				return "", nameError("your name has too many accents or marks stacked on one letter")
			}
			continue
		}
		marks = 0
		if unicode.In(r, unicode.L, unicode.N, unicode.S) && !unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) {
			visible = true
		}
	}
	if !visible {
		return "", nameError("your name needs at least one visible letter, digit or emoji")
	}
	for _, word := range strings.FieldsFunc(out, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsPunct(r) }) {
		if !singleScript(word) {
			return "", nameError("%q mixes alphabets that look alike (such as Latin and Cyrillic letters) in one word: use one alphabet per word", word)
		}
	}
	return out, nil
}

// Scripts that a single word may combine (UTS #39's "highly restrictive"
// level): Japanese, Chinese with Bopomofo and Korean, each also with Latin.
var scriptSets = [][]*unicode.RangeTable{
	{unicode.Latin, unicode.Han, unicode.Hiragana, unicode.Katakana},
	{unicode.Latin, unicode.Han, unicode.Bopomofo},
	{unicode.Latin, unicode.Han, unicode.Hangul},
}

// singleScript reports whether the letters of word come from one script,
// or from one of scriptSets. Common and inherited characters (digits,
// marks, emoji) belong to any script.
func singleScript(word string) bool {
	var seen []*unicode.RangeTable
	for _, r := range word {
		if !unicode.IsLetter(r) {
			continue
		}
		sc := scriptOf(r)
		if sc != nil && !slices.Contains(seen, sc) {
			seen = append(seen, sc)
		}
	}
	if len(seen) <= 1 {
		return true
	}
	for _, set := range scriptSets {
		if subset(seen, set) {
			return true
		}
	}
	return false
}

func subset(a, b []*unicode.RangeTable) bool {
	for _, t := range a {
		if !slices.Contains(b, t) {
			return false
		}
	}
	return true
}

// scriptOf is the script of a letter (nil for Common and Inherited).
func scriptOf(r rune) *unicode.RangeTable {
	for name, t := range unicode.Scripts {
		if name != "Common" && name != "Inherited" && unicode.Is(t, r) {
			return t
		}
	}
	return nil
}

// NameKeys are the keys under which a normalised name is unique among the
// game's current players: two names clash when they share one. Each is a
// UTS #39 confusable skeleton (Unicode's confusables.txt, by
// github.com/mtibben/confusables) with case folded, both ways round, since
// neither order alone catches everything: folding first misses capitals of
// another script ("ΑΒΕ" folds to "αβε", whose skeleton is not "abe"), and
// the skeleton first misses case ("I" becomes "l", so "Ian" would differ
// from "ian").
func NameKeys(name string) []string {
	fold := cases.Fold() // a Caser is not safe for concurrent use
	a := confusables.Skeleton(fold.String(name))
	b := fold.String(confusables.Skeleton(name))
	if a == b {
		return []string{a}
	}
	return []string{a, b}
}
