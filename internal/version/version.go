// Package version holds the version of the Atlas binaries, set at build time with
// -ldflags "-X github.com/atlasgo/atlas/internal/version.Version=v1.2.3".
package version

import "runtime/debug"

// Version is set by the build; Get falls back to the module build info.
var Version = ""

// Get returns the version string.
func Get() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}
