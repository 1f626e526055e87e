// Command foundations is the Atlas CLI: it submits jobs and fetches their logs and archives.
// See internal/cli.
package main

import (
	"context"
	"os"

	"github.com/atlasgo/atlas/internal/cli"
)

func main() {
	os.Exit(cli.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
