//go:build race

package main

// raceEnabled tells timing checks that the race detector slows the test
// (and the in-process NATS server) several times.
const raceEnabled = true
