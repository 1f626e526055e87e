// Command atlas-shim supervises one job of the process executor: atlas-server starts it per
// job (see internal/executor/process). It is atlas-server's shim in a binary of its own, so
// that starting a job does not load and initialise the whole server.
package main

import (
	"os"

	"github.com/atlasgo/atlas/internal/executor/process"
)

func main() {
	os.Exit(process.Shim(os.Args[1:]))
}
