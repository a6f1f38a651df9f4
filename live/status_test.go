package live

import "testing"

// Every transition of the link, one read at a time: what the link becomes,
// which status the next frame carries, and whether a frame is published.
func TestLinkTransitions(t *testing.T) {
	const (
		fail     = iota // the read failed
		ok              // the read succeeded, the state is whole
		catching        // the read succeeded, the state is being rebuilt
	)
	for _, tc := range []struct {
		from    Link
		read    int
		to      Link
		status  Status
		publish bool
	}{
		{LinkLive, ok, LinkLive, StatusNone, true},
		{LinkLive, fail, LinkDown, StatusReconnecting, true}, // the last frame again, marked
		{LinkLive, catching, LinkCatchingUp, StatusCatchingUp, true},
		{LinkDown, fail, LinkDown, StatusNone, false}, // nothing while down
		{LinkDown, ok, LinkLive, StatusLive, true},
		{LinkDown, catching, LinkCatchingUp, StatusCatchingUp, true},
		{LinkCatchingUp, catching, LinkCatchingUp, StatusCatchingUp, true}, // every frame marked
		{LinkCatchingUp, ok, LinkLive, StatusLive, true},
		{LinkCatchingUp, fail, LinkDown, StatusReconnecting, true},
	} {
		got := tc.from.Step(tc.read != fail, tc.read == catching)
		if got.From != tc.from || got.To != tc.to || got.Status != tc.status || got.Publish() != tc.publish || got.Changed() != (tc.from != tc.to) {
			t.Errorf("%v after read %d: %v → %v status %q publish %v; want → %v status %q publish %v",
				tc.from, tc.read, got.From, got.To, got.Status, got.Publish(), tc.to, tc.status, tc.publish)
		}
	}
}
