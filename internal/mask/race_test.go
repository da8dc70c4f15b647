//go:build race

package mask

// The race detector makes sync.Pool drop entries at random, so allocation
// counts are only meaningful without it.
const raceEnabled = true
