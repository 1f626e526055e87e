// Command atlas-server runs the Atlas scheduler, tracker, API and GUI. See internal/server.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/atlasgo/atlas/internal/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := server.Main(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
