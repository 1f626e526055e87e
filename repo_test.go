// Package repo_test holds checks on the repository as a whole: dependency walls and package
// documentation.
package repo_test

import (
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	require.NoError(t, err)
	return strings.Fields(string(out))
}

// The CLI reaches servers only through sdk/: it links no server code, database or Docker client.
func TestCLIDependsOnNoServerCode(t *testing.T) {
	t.Parallel()
	for _, d := range deps(t, "./cmd/foundations") {
		for _, banned := range []string{"/internal/server", "/internal/api", "/internal/scheduler", "/internal/store",
			"/internal/executor", "modernc.org/sqlite", "github.com/jackc/pgx", "github.com/moby/moby", "github.com/docker/docker"} {
			require.False(t, strings.Contains(d, banned), "foundations depends on %s", d)
		}
	}
}

// The code both SQL stores share (the job listing's SQL, the rules without SQL) opens no
// connection: it links no database driver, and runs its queries through a backend.
func TestSharedStoreCodeLinksNoDatabase(t *testing.T) {
	t.Parallel()
	for _, pkg := range []string{"./internal/store/joblist", "./internal/store/sqlutil"} {
		for _, d := range deps(t, pkg) {
			for _, banned := range []string{"database/sql", "modernc.org/sqlite", "github.com/jackc/pgx"} {
				require.False(t, strings.HasPrefix(d, banned), "%s depends on %s", pkg, d)
			}
		}
	}
}

// The Go client is usable by any Go program: standard library only.
func TestSDKUsesStandardLibraryOnly(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "./sdk").Output()
	require.NoError(t, err)
	require.Equal(t, []string{"github.com/atlasgo/atlas/sdk"}, strings.Fields(string(out)))
}

// Every package says what it is for.
func TestEveryPackageHasADocComment(t *testing.T) {
	t.Parallel()
	dirs := map[string]bool{}
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "node_modules" || d.Name() == "testdata") && p != "." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") && !strings.HasSuffix(p, "_test.go") {
			dirs[filepath.Dir(p)] = true
		}
		return nil
	})
	require.NoError(t, err)
	for dir := range dirs {
		pkgs, err := parser.ParseDir(token.NewFileSet(), dir, func(fi os.FileInfo) bool {
			return !strings.HasSuffix(fi.Name(), "_test.go")
		}, parser.ParseComments|parser.PackageClauseOnly)
		require.NoError(t, err)
		for name, pkg := range pkgs {
			documented := false
			for _, f := range pkg.Files {
				documented = documented || f.Doc != nil
			}
			require.True(t, documented, "package %s in %s has no package doc comment", name, dir)
		}
	}
}
