package views

import (
	"regexp"
	"testing"
)

// The join page suggests a name for one tap, in its own form, and leaves
// the name box empty (a placeholder, not a value), so typing starts clean.
func TestJoinPageSuggestsAName(t *testing.T) {
	doc := render(t, JoinPage("", ""))
	m := regexp.MustCompile(`<input type="hidden" name="username" value="([^"]+)">\s*<button id="join-suggested" class="join__button" type="submit" data-name="([^"]+)">`).FindStringSubmatch(doc)
	if m == nil || m[1] != m[2] {
		t.Fatalf("no one-tap join with the suggested name in %s", doc)
	}
	mustContain(t, doc, `placeholder="Type your name"`, "Play as ")
	if regexp.MustCompile(`id="username"[^>]* value="[^"]+"`).MatchString(doc) {
		t.Fatal("the name box is filled in")
	}
}
