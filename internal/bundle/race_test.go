//go:build race

package bundle

// raceEnabled is set when testing with -race, which makes compressing the large fixtures slow.
const raceEnabled = true
