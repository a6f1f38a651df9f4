package live

// Status is the connection status a frame puts in front of the state, so a
// page shows whether its numbers are current.
type Status string

const (
	StatusNone         Status = ""             // steady: nothing in front
	StatusLive         Status = "live"         // the first frame after reconnecting or catching up
	StatusReconnecting Status = "reconnecting" // the store does not answer: the last numbers, marked
	StatusCatchingUp   Status = "catching up"  // the state is rebuilt from the log: the numbers shown never go back
)

// Link is the hub's view of the state it reads.
type Link uint8

const (
	LinkLive       Link = iota // reads succeed and the state is whole
	LinkDown                   // the last read failed
	LinkCatchingUp             // reads succeed but the state is being rebuilt from the log
)

func (l Link) String() string {
	switch l {
	case LinkDown:
		return "down"
	case LinkCatchingUp:
		return "catching up"
	}
	return "live"
}

// Transition is what one read does to the link, and what the hub then
// publishes.
type Transition struct {
	From, To Link
	// Status goes in front of the frame the hub publishes next. Going
	// down, the last frame is published again with it (pages keep the
	// numbers they had, marked "reconnecting"); while down nothing is
	// published.
	Status Status
}

// Changed reports whether the link changed.
func (t Transition) Changed() bool { return t.From != t.To }

// Publish reports whether the hub publishes a frame: a successful read,
// or the link going down (the last frame again, with the status).
func (t Transition) Publish() bool { return t.To != LinkDown || t.From != LinkDown }

// Step is the one place the link's state is decided: from l, after a read
// that failed or succeeded (catching: the state is being rebuilt).
func (l Link) Step(readOK, catching bool) Transition {
	t := Transition{From: l}
	switch {
	case !readOK:
		t.To = LinkDown
		if l != LinkDown {
			t.Status = StatusReconnecting
		}
	case catching:
		t.To, t.Status = LinkCatchingUp, StatusCatchingUp
	default:
		t.To = LinkLive
		if l != LinkLive {
			t.Status = StatusLive
		}
	}
	return t
}
