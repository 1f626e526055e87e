package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
)

// tf is one thing to create in a test folder.
type tf struct {
	path    string // slash-separated; a trailing slash makes a directory
	content string
	mode    fs.FileMode // 0: 0o644 for files, 0o755 for directories
	link    string      // makes a symlink
}

var treeTime = time.Date(2023, 6, 7, 8, 9, 10, 0, time.UTC)

// writeTree creates files under root with fixed modes and times (directories get theirs last,
// as writing into them changes them).
func writeTree(t *testing.T, root string, files ...tf) {
	t.Helper()
	var dirs []string
	for i, f := range files {
		p := filepath.Join(root, filepath.FromSlash(strings.TrimSuffix(f.path, "/")))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		switch {
		case f.link != "":
			require.NoError(t, os.Symlink(f.link, p))
		case strings.HasSuffix(f.path, "/"):
			require.NoError(t, os.MkdirAll(p, 0o755))
			dirs = append(dirs, p)
		default:
			require.NoError(t, os.WriteFile(p, []byte(f.content), 0o644))
			mode := f.mode
			if mode == 0 {
				mode = 0o644
			}
			require.NoError(t, os.Chmod(p, mode))
			mt := treeTime.Add(time.Duration(i) * time.Minute)
			require.NoError(t, os.Chtimes(p, mt, mt))
		}
	}
	// Every directory, including the implicit ones, gets a fixed time; explicit ones their mode.
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && p != root {
			dirs = append(dirs, p)
		}
		return err
	}))
	slices.SortFunc(dirs, func(a, b string) int { return len(b) - len(a) })
	for _, p := range dirs {
		for _, f := range files {
			if strings.HasSuffix(f.path, "/") && f.mode != 0 && filepath.Join(root, filepath.FromSlash(f.path)) == p {
				require.NoError(t, os.Chmod(p, f.mode))
			}
		}
		require.NoError(t, os.Chtimes(p, treeTime, treeTime))
	}
}

// node is what a snapshot records of one path.
type node struct {
	Kind    string // file, dir, link, other
	Mode    fs.FileMode
	MTime   time.Time
	Content string // sha256 of a file
	Link    string
}

// snapshot records everything under dir except paths for which skip returns true.
func snapshot(t *testing.T, dir string, skip func(rel string) bool) map[string]node {
	t.Helper()
	out := map[string]node{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		if skip != nil && skip(rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		n := node{Mode: fi.Mode().Perm(), MTime: fi.ModTime().Truncate(time.Second).UTC()}
		switch {
		case fi.Mode().IsRegular():
			n.Kind = "file"
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			s := sha256.Sum256(b)
			n.Content = hex.EncodeToString(s[:])
		case fi.IsDir():
			n.Kind = "dir"
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Kind = "link"
			n.Link, _ = os.Readlink(p)
			n.Mode, n.MTime = 0, time.Time{} // not kept by Extract
		default:
			n.Kind = "other"
		}
		out[rel] = n
		return nil
	}))
	return out
}

func create(t *testing.T, dir string, opts Options) ([]byte, Stats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := Create(dir, &buf, opts)
	require.NoError(t, err)
	return buf.Bytes(), st
}

// names lists the entries of a tar.gz, in order.
func names(t *testing.T, b []byte) []string {
	t.Helper()
	var out []string
	for _, h := range headers(t, b) {
		out = append(out, h.Name)
	}
	return out
}

func headers(t *testing.T, b []byte) []*tar.Header {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	tr := tar.NewReader(zr)
	var out []*tar.Header
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		out = append(out, h)
	}
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var sample = []tf{
	{path: "main.py", content: "print('hi')\n", mode: 0o755},
	{path: "config/", mode: 0o750},
	{path: "config/job.config.yaml", content: "num_gpus: 1\n"},
	{path: "data/"},
	{path: "data/train.csv", content: strings.Repeat("1,2,3\n", 10_000)},
	{path: "data/secret", content: "s", mode: 0o600},
	{path: "data/readonly", content: "r", mode: 0o444},
	{path: "empty/", mode: 0o700},
	{path: "lib/deep/er/mod.py", content: "x = 1\n"},
	{path: "link-to-main", link: "main.py"},
	{path: "lib/deep/back", link: "../../data/train.csv"},
	{path: "datalink", link: "data"},
	{path: "dangling", link: "not-there-yet"},
}

func TestCreateIsDeterministic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, sample...)
	first, st := create(t, dir, JobFolder)
	second, _ := create(t, dir, JobFolder)
	require.Equal(t, sum(first), sum(second), "same folder, same bytes")
	require.Equal(t, first, second)
	require.Equal(t, 6, st.Files)
	require.Empty(t, st.Skipped)

	// The gzip header carries no name or time.
	zr, err := gzip.NewReader(bytes.NewReader(first))
	require.NoError(t, err)
	require.Empty(t, zr.Name)
	require.True(t, zr.ModTime.IsZero())

	// The same content in another place, with the same times, makes the same bundle.
	other := t.TempDir()
	writeTree(t, other, sample...)
	copied, _ := create(t, other, JobFolder)
	// Symlink times are set by the system when they are made; drop them from the comparison
	// by comparing everything else.
	requireSameExceptLinkTimes(t, first, copied)
}

func requireSameExceptLinkTimes(t *testing.T, a, b []byte) {
	t.Helper()
	ha, hb := headers(t, a), headers(t, b)
	require.Len(t, hb, len(ha))
	for i := range ha {
		if ha[i].Typeflag == tar.TypeSymlink {
			ha[i].ModTime, hb[i].ModTime = time.Time{}, time.Time{}
			ha[i].PAXRecords, hb[i].PAXRecords = nil, nil
		}
		require.Equal(t, ha[i], hb[i])
	}
}

func TestCreateChangesWithContent(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, dir string)
	}{
		{"content", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "main.py")
			fi, err := os.Stat(p)
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(p, []byte("print('ho')\n"), 0o755))
			require.NoError(t, os.Chtimes(p, fi.ModTime(), fi.ModTime())) // same size, same time
		}},
		{"mode", func(t *testing.T, dir string) { require.NoError(t, os.Chmod(filepath.Join(dir, "main.py"), 0o644)) }},
		{"mtime", func(t *testing.T, dir string) {
			tm := treeTime.Add(time.Hour)
			require.NoError(t, os.Chtimes(filepath.Join(dir, "main.py"), tm, tm))
		}},
		{"new file", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "data", "new")
			require.NoError(t, os.WriteFile(p, nil, 0o644))
			require.NoError(t, os.Chtimes(p, treeTime, treeTime))
			require.NoError(t, os.Chtimes(filepath.Join(dir, "data"), treeTime, treeTime))
		}},
		{"removed file", func(t *testing.T, dir string) {
			require.NoError(t, os.Remove(filepath.Join(dir, "data", "secret")))
			require.NoError(t, os.Chtimes(filepath.Join(dir, "data"), treeTime, treeTime))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTree(t, dir, sample...)
			before, _ := create(t, dir, JobFolder)
			tc.change(t, dir)
			after, _ := create(t, dir, JobFolder)
			require.NotEqual(t, sum(before), sum(after))
		})
	}
}

func TestCreateKeepsModesAndTimes(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, sample...)
	b, _ := create(t, dir, JobFolder)
	byName := map[string]*tar.Header{}
	for _, h := range headers(t, b) {
		byName[h.Name] = h
		require.Zero(t, h.Uid, h.Name)
		require.Zero(t, h.Gid, h.Name)
		require.Empty(t, h.Uname, h.Name)
		require.Empty(t, h.Gname, h.Name)
	}
	require.EqualValues(t, 0o755, byName["main.py"].Mode)
	require.EqualValues(t, 0o600, byName["data/secret"].Mode)
	require.EqualValues(t, 0o444, byName["data/readonly"].Mode)
	require.EqualValues(t, 0o750, byName["config/"].Mode)
	require.EqualValues(t, 0o700, byName["empty/"].Mode)
	require.Equal(t, byte(tar.TypeDir), byName["empty/"].Typeflag)
	require.Equal(t, treeTime, byName["main.py"].ModTime.UTC())
	require.Equal(t, treeTime.Add(4*time.Minute), byName["data/train.csv"].ModTime.UTC())
	require.Equal(t, treeTime, byName["data/"].ModTime.UTC())
	require.Equal(t, byte(tar.TypeSymlink), byName["lib/deep/back"].Typeflag)
	require.Equal(t, "../../data/train.csv", byName["lib/deep/back"].Linkname)
	require.EqualValues(t, 10_000*6, byName["data/train.csv"].Size)
}

func TestCreateOrderIsSorted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, tf{path: "b"}, tf{path: "a/z"}, tf{path: "a/b"}, tf{path: "C"}, tf{path: "a.txt"})
	b, _ := create(t, dir, Options{})
	require.Equal(t, []string{"C", "a/", "a/b", "a/z", "a.txt", "b"}, names(t, b))
}

// ignoreTree has something for every kind of pattern.
var ignoreTree = []tf{
	{path: ".git/config"},
	{path: ".git/objects/ab"},
	{path: "__pycache__/m.cpython-311.pyc"},
	{path: ".ipynb_checkpoints/nb-checkpoint.ipynb"},
	{path: "main.py"},
	{path: "lib/util.py"},
	{path: "lib/util.pyc"},
	{path: "lib/__pycache__/util.cpython-311.pyc"},
	{path: "data/raw/big.bin"},
	{path: "data/small.csv"},
	{path: "logs/run.log"},
	{path: "logs/keep.log"},
	{path: "build/out.o"},
	{path: "src/build/gen.go"},
	{path: "src/logs"}, // a file named like a directory pattern
	{path: "a/b/file"},
	{path: "a/x/y/b/file"},
	{path: "a/c/file"},
	{path: "notes.txt"},
	{path: "docs/notes.txt"},
}

func TestCreateIgnore(t *testing.T) {
	t.Parallel()
	// Everything in ignoreTree minus the default ignores, as bundle entries.
	base := []string{
		"a/", "a/b/", "a/b/file", "a/c/", "a/c/file", "a/x/", "a/x/y/", "a/x/y/b/", "a/x/y/b/file",
		"build/", "build/out.o", "data/", "data/raw/", "data/raw/big.bin", "data/small.csv",
		"docs/", "docs/notes.txt", "lib/", "lib/util.py", "logs/", "logs/keep.log", "logs/run.log",
		"main.py", "notes.txt", "src/", "src/build/", "src/build/gen.go", "src/logs",
	}
	without := func(drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(base), func(s string) bool { return slices.Contains(drop, s) })
	}
	for _, tc := range []struct {
		name   string
		ignore string // content of .atlasignore; "-" for no file
		want   []string
	}{
		{"defaults only", "-", base},
		{"empty file", "", append(without(), ".atlasignore")},
		{"comments and blank lines", "# a comment\n\n   \n#notes.txt\n", append(without(), ".atlasignore")},
		{"name", "notes.txt\n", without("notes.txt", "docs/notes.txt")},
		{"extension", "*.log\n", without("logs/run.log", "logs/keep.log")},
		{"directory", "build/\n", without("build/", "build/out.o", "src/build/", "src/build/gen.go")},
		{"directory pattern skips files", "logs/\n", without("logs/", "logs/run.log", "logs/keep.log")},
		{"anchored", "/build/\n", without("build/", "build/out.o")},
		{"anchored file", "/notes.txt\n", without("notes.txt")},
		{"anchored path", "data/raw\n", without("data/raw/", "data/raw/big.bin")},
		{"double star", "a/**/b\n", without("a/b/", "a/b/file", "a/x/y/b/", "a/x/y/b/file")},
		{"leading double star", "**/b/file\n", without("a/b/file", "a/x/y/b/file")},
		{"negation", "*.log\n!keep.log\n", without("logs/run.log")},
		{"last match wins", "!keep.log\n*.log\n", without("logs/run.log", "logs/keep.log")},
		{"negating a default", "!*.pyc\n", append(without(), "lib/util.pyc")},
		{"character class", "[ab]/\n", without("a/", "a/b/", "a/b/file", "a/c/", "a/c/file", "a/x/", "a/x/y/", "a/x/y/b/", "a/x/y/b/file")},
		{"windows line endings", "notes.txt\r\n*.log\r\n", without("notes.txt", "docs/notes.txt", "logs/run.log", "logs/keep.log")},
		{"bad pattern matches nothing", "[\n", base},
		{"ignoring the ignore file", ".atlasignore\n", base},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			writeTree(t, dir, ignoreTree...)
			if tc.ignore != "-" {
				writeTree(t, dir, tf{path: IgnoreFile, content: tc.ignore})
			}
			want := slices.Clone(tc.want)
			if tc.ignore != "-" && !slices.Contains(want, IgnoreFile) && !strings.Contains(tc.ignore, IgnoreFile) {
				want = append(want, IgnoreFile)
			}
			slices.Sort(want)
			b, st := create(t, dir, JobFolder)
			got := names(t, b)
			slices.Sort(got)
			require.Equal(t, want, got)
			files := 0
			for _, n := range got {
				if !strings.HasSuffix(n, "/") {
					files++
				}
			}
			require.Equal(t, files, st.Files)

			est, err := Estimate(dir, JobFolder)
			require.NoError(t, err)
			require.Equal(t, st, est)
		})
	}
}

func TestCreateWithoutIgnoreRules(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, ignoreTree...)
	writeTree(t, dir, tf{path: IgnoreFile, content: "*\n"})
	b, st := create(t, dir, Options{})
	require.Contains(t, names(t, b), ".git/objects/ab")
	require.Contains(t, names(t, b), IgnoreFile)
	require.Equal(t, len(ignoreTree)+1, st.Files)

	// Explicit patterns without the ignore file.
	b, _ = create(t, dir, Options{Ignore: []string{"*.py"}})
	require.NotContains(t, names(t, b), "main.py")
	require.Contains(t, names(t, b), "lib/util.pyc")
}

func TestCreateSkipsLinksOutside(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dir := filepath.Join(parent, "job")
	writeTree(t, parent, tf{path: "secret", content: "outside"})
	writeTree(t, dir,
		tf{path: "main.py"},
		tf{path: "sub/file"},
		tf{path: "d1/d2/f"},
		tf{path: "abs", link: "/etc/passwd"},
		tf{path: "abs-inside", link: filepath.Join(dir, "main.py")}, // absolute, even if inside
		tf{path: "up", link: "../secret"},
		tf{path: "sub/up2", link: "../../secret"},
		tf{path: "parent", link: ".."},
		tf{path: "d1/d2/root", link: "../.."},                // inside: the root
		tf{path: "d1/d2/esc", link: "root/../../secret"},     // "root/.." is the folder's parent
		tf{path: "through-ignored", link: ".git/../main.py"}, // .git is not in the bundle
		tf{path: ".git/HEAD"},
		tf{path: "in", link: "main.py"},
		tf{path: "sub/back", link: "../main.py"},
		tf{path: "sub/dot", link: "./file"},
		tf{path: "dirlink", link: "sub"},
		tf{path: "dangling", link: "nothing/here"},
		tf{path: "d1/up-down", link: "../sub/../main.py"}, // sub is a real directory: inside
	)
	b, st := create(t, dir, JobFolder)
	got := names(t, b)
	for _, n := range []string{"in", "sub/back", "sub/dot", "dirlink", "dangling", "d1/d2/root", "d1/up-down"} {
		require.Contains(t, got, n)
	}
	var skipped []string
	for _, s := range st.Skipped {
		skipped = append(skipped, strings.SplitN(s, " ", 2)[0])
		require.Contains(t, s, "link points outside the folder")
	}
	slices.Sort(skipped)
	require.Equal(t, []string{"abs", "abs-inside", "d1/d2/esc", "parent", "sub/up2", "through-ignored", "up"}, skipped)
	for _, n := range skipped {
		require.NotContains(t, got, n)
	}

	// What Create keeps, Extract accepts.
	dst := t.TempDir()
	require.NoError(t, Extract(bytes.NewReader(b), dst, DefaultLimits))
	data, err := os.ReadFile(filepath.Join(dst, "sub", "back"))
	require.NoError(t, err)
	require.Empty(t, data)
}

func TestCreateFollowsRootLink(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	writeTree(t, parent, tf{path: "real/main.py", content: "x"})
	require.NoError(t, os.Symlink("real", filepath.Join(parent, "link")))
	b, st := create(t, filepath.Join(parent, "link"), JobFolder)
	require.Equal(t, []string{"main.py"}, names(t, b))
	require.Equal(t, 1, st.Files)
}

func TestCreateBadFolder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeTree(t, dir, tf{path: "file"})
	var buf bytes.Buffer
	_, err := Create(filepath.Join(dir, "file"), &buf, JobFolder)
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.ErrorContains(t, err, "not a directory")
	_, err = Create(filepath.Join(dir, "missing"), &buf, JobFolder)
	require.ErrorIs(t, err, fs.ErrNotExist)
	_, err = Estimate(filepath.Join(dir, "missing"), JobFolder)
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	writeTree(t, src, sample...)
	b, _ := create(t, src, JobFolder)
	dst := t.TempDir()
	require.NoError(t, Extract(bytes.NewReader(b), dst, DefaultLimits))
	require.Equal(t, snapshot(t, src, nil), snapshot(t, dst, nil))

	// And the extracted folder bundles to the same bytes, link times aside.
	again, _ := create(t, dst, JobFolder)
	requireSameExceptLinkTimes(t, b, again)
}

func TestRoundTripEmptyFolder(t *testing.T) {
	t.Parallel()
	b, st := create(t, t.TempDir(), JobFolder)
	require.Zero(t, st.Files)
	require.Empty(t, names(t, b))
	dst := t.TempDir()
	require.NoError(t, Extract(bytes.NewReader(b), dst, DefaultLimits))
	require.Empty(t, snapshot(t, dst, nil))
}

// extractHostile extracts an archive into parent/dst, next to parent/outside/secret, and checks
// that nothing outside dst changed and that no link in dst leads out of it.
func extractHostile(t *testing.T, archive []byte, lim Limits) error {
	t.Helper()
	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	require.NoError(t, os.Mkdir(dst, 0o755))
	writeTree(t, parent, tf{path: "outside/secret", content: "do not touch"})
	outsideDst := func(rel string) bool { return rel == "dst" || strings.HasPrefix(rel, "dst/") }
	before := snapshot(t, parent, outsideDst)

	err := Extract(bytes.NewReader(archive), dst, lim)

	require.Equal(t, before, snapshot(t, parent, outsideDst), "Extract wrote outside its target")
	_, serr := os.Lstat(absoluteEscape)
	require.ErrorIs(t, serr, fs.ErrNotExist, "Extract wrote to an absolute path")
	requireNoLinkOut(t, dst)
	return err
}

// requireNoLinkOut fails if following any link under dst leads outside it.
func requireNoLinkOut(t *testing.T, dst string) {
	t.Helper()
	root, err := os.OpenRoot(dst)
	require.NoError(t, err)
	defer root.Close()
	require.NoError(t, filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeSymlink == 0 {
			return err
		}
		rel, _ := filepath.Rel(dst, p)
		target, _ := os.Readlink(p)
		require.False(t, filepath.IsAbs(target), "link %s -> %s is absolute", rel, target)
		if _, err := root.Stat(rel); err != nil {
			require.NotContains(t, err.Error(), "escapes", "link %s -> %s leads outside", rel, target)
		}
		return nil
	}))
}

func requireInvalid(t *testing.T, err error, want string) {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, atlas.ErrInvalid)
	require.Contains(t, err.Error(), want)
	require.NotContains(t, err.Error(), "\n")
}

func TestExtractRefusesHostileArchives(t *testing.T) {
	t.Parallel()
	for _, h := range hostileFixtures() {
		t.Run(h.name, func(t *testing.T) {
			t.Parallel()
			archive, err := os.ReadFile(filepath.Join("testdata", "hostile", h.name))
			require.NoError(t, err)
			err = extractHostile(t, archive, hostileLimits)
			requireInvalid(t, err, h.wantErr)
			t.Log(err)
		})
	}
}

func TestExtractRefusesWritingThroughExistingLink(t *testing.T) {
	t.Parallel()
	parent := t.TempDir()
	dst := filepath.Join(parent, "dst")
	writeTree(t, parent, tf{path: "outside/secret", content: "x"}, tf{path: "dst/escape", link: "../outside"})
	before := snapshot(t, parent, func(rel string) bool { return strings.HasPrefix(rel, "dst") })
	for _, archive := range [][]byte{
		targz(reg("escape/pwned", "x")),
		targz(dir("escape/")),
		targz(dir("escape/sub/")),
		targz(hardlink("h", "escape/secret")),
		targz(symlink("escape/l", "x")),
	} {
		err := Extract(bytes.NewReader(archive), dst, DefaultLimits)
		require.ErrorIs(t, err, atlas.ErrInvalid)
		require.NotContains(t, err.Error(), "\n")
	}
	require.Equal(t, before, snapshot(t, parent, func(rel string) bool { return strings.HasPrefix(rel, "dst") }))
}

func TestExtractLimits(t *testing.T) {
	t.Parallel()
	archive := targz(reg("a", strings.Repeat("a", 600)), reg("b", strings.Repeat("b", 400)), hardlink("c", "b"))
	require.NoError(t, Extract(bytes.NewReader(archive), t.TempDir(), Limits{MaxBytes: 1400, MaxEntries: 3}))
	requireInvalid(t, Extract(bytes.NewReader(archive), t.TempDir(), Limits{MaxBytes: 999}), "expands to more than 999 bytes")
	requireInvalid(t, Extract(bytes.NewReader(archive), t.TempDir(), Limits{MaxBytes: 1399}), "expands to more than 1399 bytes")
	requireInvalid(t, Extract(bytes.NewReader(archive), t.TempDir(), Limits{MaxEntries: 2}), "more than 2 entries")
	require.NoError(t, Extract(bytes.NewReader(archive), t.TempDir(), Limits{}), "zero limits mean no limit")
}

func TestExtractAcceptsPaddedArchives(t *testing.T) {
	t.Parallel()
	// Python's tarfile pads archives to 10 KiB records.
	raw := rawTar(reg("a", "hello"))
	raw = append(raw, make([]byte, 10240-len(raw))...)
	dst := t.TempDir()
	require.NoError(t, Extract(bytes.NewReader(gz(raw)), dst, Limits{MaxBytes: 5, MaxEntries: 1}))
	b, err := os.ReadFile(filepath.Join(dst, "a"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(b))
}

func TestExtractHardLinkIsACopy(t *testing.T) {
	t.Parallel()
	dst := t.TempDir()
	archive := targz(dir("d/"), reg("d/a", "content"), hardlink("b", "d/a"))
	require.NoError(t, Extract(bytes.NewReader(archive), dst, DefaultLimits))
	b, err := os.ReadFile(filepath.Join(dst, "b"))
	require.NoError(t, err)
	require.Equal(t, "content", string(b))
}

func TestExtractLaterEntryWins(t *testing.T) {
	t.Parallel()
	dst := t.TempDir()
	archive := targz(reg("a", "first"), reg("a", "second"), dir("d/"), reg("d", "file now"))
	require.NoError(t, Extract(bytes.NewReader(archive), dst, DefaultLimits))
	b, err := os.ReadFile(filepath.Join(dst, "a"))
	require.NoError(t, err)
	require.Equal(t, "second", string(b))
	b, err = os.ReadFile(filepath.Join(dst, "d"))
	require.NoError(t, err)
	require.Equal(t, "file now", string(b))

	// A non-empty directory is not replaced by a file.
	archive = targz(reg("d/x", "x"), reg("d", "file"))
	requireInvalid(t, Extract(bytes.NewReader(archive), t.TempDir(), DefaultLimits), `bundle entry "d"`)
}

func TestExtractModes(t *testing.T) {
	t.Parallel()
	dst := t.TempDir()
	entries := []tent{dir("ro/"), reg("ro/f", "x"), reg("exe", "#!/bin/sh\n"), reg("ro-file", "r"), reg("world", "w")}
	entries[0].hdr.Mode = 0o555
	entries[2].hdr.Mode = 0o775
	entries[3].hdr.Mode = 0o444
	entries[4].hdr.Mode = 0o666
	require.NoError(t, Extract(bytes.NewReader(targz(entries...)), dst, DefaultLimits))
	snap := snapshot(t, dst, nil)
	require.Equal(t, fs.FileMode(0o755), snap["ro"].Mode, "directories stay writable by their owner")
	require.Equal(t, fs.FileMode(0o775), snap["exe"].Mode, "modes are kept despite the umask")
	require.Equal(t, fs.FileMode(0o444), snap["ro-file"].Mode)
	require.Equal(t, fs.FileMode(0o666), snap["world"].Mode)
	require.Equal(t, fixtureTime, snap["exe"].MTime)
	require.Equal(t, fixtureTime, snap["ro"].MTime)
	require.NoError(t, os.RemoveAll(filepath.Join(dst, "ro")), "the extracted tree can be removed")
}

func TestExtractIntoMissingDir(t *testing.T) {
	t.Parallel()
	err := Extract(bytes.NewReader(targz(reg("a", "x"))), filepath.Join(t.TempDir(), "missing"), DefaultLimits)
	require.ErrorIs(t, err, fs.ErrNotExist)
}

func TestExtractOneLineErrorsForOddNames(t *testing.T) {
	t.Parallel()
	for _, archive := range [][]byte{
		targz(symlink("a\nb", "/etc\nx")),
		targz(hardlink("a\nb", "missing\nfile")),
		targz(reg("d\n/x", "x"), reg("d\n", "y")),
		targz(reg("x", "1"), symlink("x", "y\nz")),
	} {
		err := extractHostile(t, archive, DefaultLimits)
		require.ErrorIs(t, err, atlas.ErrInvalid)
		require.NotContains(t, err.Error(), "\n")
		require.NotContains(t, err.Error(), "\r")
	}
}

func TestLinkStaysInside(t *testing.T) {
	t.Parallel()
	dirs := map[string]bool{"a": true, "a/b": true, "c": true}
	isDir := func(p string) bool { return dirs[p] }
	for _, tc := range []struct {
		name, target string
		want         bool
	}{
		{"l", "a", true},
		{"l", "a/b/../..", true},
		{"l", "./a", true},
		{"l", "a//b/", true},
		{"a/l", "..", true},
		{"a/l", "../c", true},
		{"a/b/l", "../../c", true},
		{"a/b/l", "../../../c", false},
		{"l", "..", false},
		{"l", "../x", false},
		{"l", "a/../../x", false},
		{"l", "x/..", false}, // x is not a directory of the bundle: it may be a link
		{"l", "a/x/../..", false},
		{"a/l", "b/../../..", false},
		{"l", "/etc", false},
		{"l", "", false},
		{"l", "a\x00", false},
	} {
		require.Equal(t, tc.want, linkStaysInside(tc.name, tc.target, isDir), "%s -> %s", tc.name, tc.target)
	}
	// Lexically only, a ".." after a name is taken at its word.
	require.True(t, linkStaysInside("l", "x/..", nil))
	require.False(t, linkStaysInside("l", "x/../..", nil))
}

func TestMatchPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		glob, rel string
		want      bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/b/c", false},
		{"a/*", "a/b", true},
		{"a/*", "a/b/c", false},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "a/x/y/c", false},
		{"**/b", "b", true},
		{"**/b", "x/y/b", true},
		{"a/**", "a/x/y", true},
		{"*.py", "x.py", true},
		{"*.py", "d/x.py", false},
	} {
		require.Equal(t, tc.want, matchPath(tc.glob, tc.rel), "%s ~ %s", tc.glob, tc.rel)
	}
}

// A folder bundled from a home directory does not carry its credentials; .atlasignore can bring
// one of them back.
func TestCredentialsAreLeftOut(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"main.py", ".ssh/id_ed25519", ".aws/credentials", ".gnupg/pubring.kbx", ".kube/config",
		".docker/config.json", ".config/gcloud/credentials.db", ".config/app.toml", ".netrc", ".pypirc",
		".git-credentials", ".env", "sub/.env"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o600))
	}
	data, _ := create(t, dir, JobFolder)
	require.Equal(t, []string{".config/", ".config/app.toml", "main.py", "sub/"}, names(t, data))
	require.NoError(t, os.WriteFile(filepath.Join(dir, IgnoreFile), []byte("!.env\n"), 0o644))
	data, _ = create(t, dir, JobFolder)
	require.Contains(t, names(t, data), ".env")
	require.Contains(t, names(t, data), "sub/.env")
	require.NotContains(t, names(t, data), ".ssh/id_ed25519")
}
