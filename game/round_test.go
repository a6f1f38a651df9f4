package game

import "testing"

// The rule both the tap handler and the consumer apply: a timed round's
// taps count inside [StartsAt, EndsAt) only; open play counts everything.
func TestRoundScheduleCounts(t *testing.T) {
	sc := &RoundSchedule{Number: 3, Mode: ModeTimed, CountdownAt: 1000, StartsAt: 3000, EndsAt: 8000}
	for ts, want := range map[int64]bool{999: false, 2999: false, 3000: true, 7999: true, 8000: false, 9000: false} {
		if got := sc.Counts(ts); got != want {
			t.Errorf("Counts(%d) = %v, want %v", ts, got, want)
		}
	}
	for now, want := range map[int64]RoundStatus{1000: StatusCountdown, 2999: StatusCountdown, 3000: StatusRunning, 8000: StatusOver} {
		if got := sc.Status(now); got != want {
			t.Errorf("Status(%d) = %s, want %s", now, got, want)
		}
	}
	var open *RoundSchedule
	if !open.Counts(0) || !(&RoundSchedule{Mode: ModeOpen}).Counts(5) {
		t.Error("open play must count every tap")
	}
}

// The next round of a repeating schedule depends on the previous one
// alone, so every instance that writes it writes the same markers.
func TestRoundScheduleNext(t *testing.T) {
	sc := RoundSchedule{Number: 3, Mode: ModeTimed, CountdownAt: 1000, StartsAt: 3000, EndsAt: 8000, Repeat: true, Intermission: 15000}
	want := RoundSchedule{Number: 4, Mode: ModeTimed, CountdownAt: 21000, StartsAt: 23000, EndsAt: 28000, Repeat: true, Intermission: 15000}
	if got := sc.Next(); got != want {
		t.Fatalf("Next() = %+v, want %+v", got, want)
	}
	st := sc.State(9000, &RoundResult{Round: 3, Blue: 5, Red: 5, Winner: Winner(5, 5)})
	if !st.Final || *st.Winner != "tie" || st.NextStartsAt != 23000 || st.Status != StatusOver {
		t.Fatalf("State = %+v", st)
	}
	if st := sc.State(9000, nil); st.Final || st.Winner != nil || st.Status != StatusOver {
		t.Fatalf("State before the result = %+v", st)
	}
}
