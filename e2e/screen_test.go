package e2e

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// The presenter screen on a projector: live like the game page, no
// scrolling at 1280×720 and 1920×1080, and a QR code that a phone's reader
// (zbarimg, from a screenshot) decodes to the join page.
func TestPresenterScreen(t *testing.T) {
	e := newEnv(t)
	browser := newBrowser(t)
	e.apiTaps("Zoë", 7)
	e.apiTaps("speedy_gonzales.42", 12)
	screen := newPlayer(t, browser, "screen")
	screen.do(chromedp.EmulateViewport(1920, 1080), chromedp.Navigate(e.base+"/screen"),
		chromedp.WaitVisible(chromedp.CSS(".screen__qr svg")))
	screen.waitConnected(10*time.Second, "live")
	e.apiTaps("Kim", 5)
	e.apiTaps("Maximiliana Thunderclap", 4)
	e.apiTaps("Ørjan", 2)
	e.apiTaps("Lee", 1) // sixth: on the board's fragment, hidden on the screen
	screen.waitView(liveWithin, "total 31 with six players on the board", func(v view) bool {
		return v.Total == "31" && len(v.Board) == 6 && v.Board[0].Taps == 12
	})
	if shown := eval[int](screen, `[...document.querySelectorAll('#leaderboard li')].filter(li => li.offsetParent !== null).length`); shown != 5 {
		t.Errorf("the screen shows %d leaderboard rows, want 5", shown)
	}
	for _, size := range []struct {
		name string
		w, h int64
	}{{"screen-1920", 1920, 1080}, {"screen-1280", 1280, 720}} {
		if !screen.fitsAt(size.w, size.h) {
			t.Errorf("%dx%d: the screen scrolls", size.w, size.h)
		}
		// The page fits, so the full-page screenshot is the viewport.
		path := screen.screenshot(size.name, size.w, size.h, false)
		if got := decodeQR(t, path); got != e.base+"/" {
			t.Errorf("%s: the QR code reads %q, want %q", size.name, got, e.base+"/")
		}
	}

	// A phone opens what the QR code reads: one tap on "Play as <the
	// suggested name>".
	phone := newPlayer(t, browser, "phone")
	phone.do(chromedp.EmulateViewport(375, 800, chromedp.EmulateMobile), chromedp.Navigate(decodeQR(t, filepath.Join("testdata", "artifacts", "screen-1280.png"))),
		chromedp.WaitVisible(chromedp.CSS("#join-suggested")))
	name := eval[string](phone, `document.getElementById('join-suggested').dataset.name`)
	if name == "" {
		t.Fatal("the join page suggests no name")
	}
	phone.do(chromedp.Click(chromedp.CSS(`#join-suggested`)), chromedp.WaitVisible(chromedp.CSS("#tap-button")))
	if got := eval[string](phone, `document.querySelector('.me__name').textContent`); got != name {
		t.Fatalf("joined as %q, the form said %q", got, name)
	}
}

// decodeQR reads the QR code in a PNG as a phone's reader would.
func decodeQR(t *testing.T, path string) string {
	t.Helper()
	zbar, err := exec.LookPath("zbarimg")
	if err != nil {
		t.Skip("no zbarimg (apt-get install zbar-tools): cannot read the QR code")
	}
	out, err := exec.Command(zbar, "-q", "--raw", path).Output()
	if err != nil {
		t.Fatalf("zbarimg %s: %v (no QR code found?)", path, err)
	}
	return strings.TrimSpace(string(out))
}
