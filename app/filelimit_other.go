//go:build !unix

package app

// fileLimit is unknown here: MAX_TCP_CONNECTIONS applies as set.
func fileLimit() int { return 0 }
