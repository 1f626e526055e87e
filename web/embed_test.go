package web

import (
	"io/fs"
	"strings"
	"testing"
)

// The server always has an index.html to serve: the GUI when it was built, otherwise a page
// that says how to build it.
func TestFSHasAnIndexPage(t *testing.T) {
	index, err := fs.ReadFile(FS(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	page := string(index)
	if Built() {
		if !strings.Contains(page, `id="app"`) {
			t.Fatalf("built GUI's index.html has no app element:\n%s", page)
		}
		return
	}
	if !strings.Contains(page, "make build") {
		t.Fatalf("placeholder page does not say how to build the GUI:\n%s", page)
	}
}
