package game

import "testing"

// Pinned ids carry their partition; other ids (older players, the old
// game's uuids) carry none.
func TestIDPartition(t *testing.T) {
	for _, tc := range []struct {
		id   string
		p    int32
		pins bool
	}{
		{PinnedID("9f2c0a", 3), 3, true},
		{PinnedID("00ff", 11), 11, true},
		{"9f2c0a", 0, false},
		{"p3", 0, false},
		{"9f2c0ap", 0, false},
		{"9f2g0ap3", 0, false}, // not hex before the p
		{"550e8400-e29b-41d4-a716-446655440000", 0, false},
		{"abcp1234567", 0, false}, // too many digits
	} {
		p, ok := IDPartition(tc.id)
		if p != tc.p || ok != tc.pins {
			t.Errorf("IDPartition(%q) = %d, %v; want %d, %v", tc.id, p, ok, tc.p, tc.pins)
		}
	}
}
