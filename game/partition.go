package game

import "strconv"

// A player's records (join, taps, kick) must stay on one partition of the
// tap log: the replay applies each partition in order, but partitions in
// any order among themselves, so a join on one partition and taps on
// another could be replayed taps first. Hashing the id over the partition
// count moves players when the topic grows; so a player who joins is pinned
// to a partition chosen then, carried in the id itself ("<hex>p<partition>";
// hex never holds a 'p'), and every record of theirs goes there.

// PinnedID is id (hex) pinned to partition p.
func PinnedID(id string, p int32) string { return id + "p" + strconv.FormatInt(int64(p), 10) }

// IDPartition is the partition an id is pinned to; false for ids without
// one (players of older versions and other writers: they are placed by a
// hash of the id).
func IDPartition(id string) (int32, bool) {
	i := len(id) - 1
	for i >= 0 && id[i] >= '0' && id[i] <= '9' {
		i--
	}
	if i <= 0 || i == len(id)-1 || id[i] != 'p' || len(id)-i > 6 {
		return 0, false
	}
	for _, c := range id[:i] {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(id[i+1:], 10, 32)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}
