package e2e

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// A name taken by a player in the game, typed on a phone: the join page
// comes back with the reason and a free name in its alert, keeping what was
// typed; the free name then joins.
func TestTakenNameOnAPhone(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	alice := newPlayer(t, browser, "Alice")
	alice.join(e.base, "/")

	other := newPlayer(t, browser, "ALICE")
	other.do(chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulateScale(2)))
	other.do(
		chromedp.Navigate(e.base+"/"),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.Clear(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "ALICE"),
		chromedp.Click(chromedp.CSS(`form.join__form button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#join-error")),
	)
	msg := eval[string](other, `document.querySelector('#join-error').textContent`)
	if !strings.Contains(msg, `"ALICE" is taken`) || !strings.Contains(msg, `"ALICE 2" is free`) {
		t.Fatalf("join error: %q", msg)
	}
	if role := eval[string](other, `document.querySelector('#join-error').getAttribute('role')`); role != "alert" {
		t.Fatalf("the error's role is %q: screen readers would not announce it", role)
	}
	if v := eval[string](other, `document.querySelector('#username').value`); v != "ALICE" {
		t.Fatalf("the field holds %q, want what was typed", v)
	}
	if !eval[bool](other, `document.documentElement.scrollWidth <= innerWidth`) {
		t.Errorf("the join page with the error is wider than the phone")
	}
	other.screenshot("join-taken-375", 375, 812, true)
	other.name = "ALICE 2"
	other.join(e.base, "/")
}
