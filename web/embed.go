// Package web embeds the GUI, built from web/src into web/dist by `make web`. When the GUI has
// not been built, a placeholder page says how to build it, so `go build` works without Node.
package web

import (
	"embed"
	"io/fs"
	"testing/fstest"
)

//go:embed all:dist
var dist embed.FS

const placeholder = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Atlas</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:4em auto;color:#222}code{background:#eee;padding:.1em .3em}</style>
</head><body><h1>Atlas</h1>
<p>The API is running at <code>/api/v1</code>, but this server was built without its web GUI.</p>
<p>Build it with <code>make build</code> (needs Node.js and npm), then restart <code>atlas-server</code>.</p>
</body></html>
`

// FS returns the GUI files, or the placeholder page when the GUI was not built.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err == nil {
		if _, err := fs.Stat(sub, "index.html"); err == nil {
			return sub
		}
	}
	return fstest.MapFS{"index.html": {Data: []byte(placeholder)}}
}

// Built reports whether the real GUI is embedded.
func Built() bool {
	_, err := fs.Stat(dist, "dist/index.html")
	return err == nil
}
