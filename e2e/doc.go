// Package e2e holds the end-to-end tests of tapwars' live game page: a real
// tapwars instance (against a test redis-server and the kfake broker) driven
// through Debian's chromium with chromedp. It has no non-test code; see
// DEVELOPERS.md for how to run the tests and the browser flags they use.
package e2e
