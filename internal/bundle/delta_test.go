package bundle

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// deltaTree writes a folder with names that test Create's order ("a", "a.b", "a/b", "a-b").
func deltaTree(t *testing.T, r *rand.Rand) string {
	t.Helper()
	dir := t.TempDir()
	names := []string{"a", "a.b", "a-b", "b", "data", "z"}
	for _, d := range []string{"a", "a/b", "data", "data/x", "z"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	for i := 0; i < 20; i++ {
		d := []string{"", "a", "a/b", "data", "data/x", "z"}[r.IntN(6)]
		name := names[r.IntN(len(names))] + fmt.Sprint(r.IntN(4))
		body := bytes.Repeat([]byte{byte('a' + r.IntN(26))}, r.IntN(3000))
		require.NoError(t, os.WriteFile(filepath.Join(dir, d, name), body, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "a.b"), []byte("sibling of a/"), 0o644))
	require.NoError(t, os.Symlink("a/b", filepath.Join(dir, "link")))
	return dir
}

// mutate changes the folder the way a job might: rewrites, appends, touches, chmods, deletes
// files and folders, adds files and folders, turns a file into a folder and a link around.
func mutate(t *testing.T, r *rand.Rand, dir string) {
	t.Helper()
	var files, dirs []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		require.NoError(t, err)
		if p == dir {
			return nil
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		} else {
			files = append(files, p)
		}
		return nil
	}))
	later := time.Now().Add(time.Duration(1+r.IntN(100)) * time.Hour)
	for i := 0; i < 1+r.IntN(6); i++ {
		pick := func(l []string) string { return l[r.IntN(len(l))] }
		switch r.IntN(9) {
		case 0: // same size, new content, same time
			p := pick(files)
			if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() && fi.Size() > 0 {
				b, _ := os.ReadFile(p)
				b[0]++
				require.NoError(t, os.WriteFile(p, b, fi.Mode()))
				require.NoError(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
			}
		case 1: // appended
			if f, err := os.OpenFile(pick(files), os.O_APPEND|os.O_WRONLY, 0); err == nil {
				f.WriteString("more\n")
				f.Close()
			}
		case 2: // touched only
			os.Chtimes(pick(files), later, later)
		case 3: // mode changed
			os.Chmod(pick(files), 0o600)
		case 4: // deleted
			os.Remove(pick(files))
		case 5: // a folder deleted with everything in it
			os.RemoveAll(pick(dirs))
		case 6: // added, in a new folder too
			d := filepath.Join(dir, "out", fmt.Sprint(r.IntN(3)))
			require.NoError(t, os.MkdirAll(d, 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(d, "result.json"), []byte(`{"acc": 0.9}`), 0o644))
		case 7: // a file replaced by a folder
			p := pick(files)
			if os.Remove(p) == nil {
				require.NoError(t, os.MkdirAll(filepath.Join(p, "inner"), 0o755))
			}
		case 8: // a link retargeted
			os.Remove(filepath.Join(dir, "link"))
			os.Symlink(fmt.Sprintf("a.b%d", r.IntN(2)), filepath.Join(dir, "link"))
		}
	}
}

func createBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var b bytes.Buffer
	_, err := Create(dir, &b, Options{})
	require.NoError(t, err)
	return b.Bytes()
}

// TestDeltaRebuildsWholeArchive: for folders changed in many ways after their bundle was
// unpacked, the delta rebuilt against the bundle is byte for byte the whole archive of the
// folder.
func TestDeltaRebuildsWholeArchive(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 7))
			base := createBytes(t, deltaTree(t, r))
			work := t.TempDir()
			require.NoError(t, Extract(bytes.NewReader(base), work, DefaultLimits))
			if seed > 0 { // seed 0: nothing changed
				mutate(t, r, work)
			}
			var delta bytes.Buffer
			_, err := CreateDelta(work, index(t, base), "sha256:base", &delta)
			require.NoError(t, err)
			got, err := DeltaBase(bytes.NewReader(delta.Bytes()))
			require.NoError(t, err)
			require.Equal(t, "sha256:base", got)

			var rebuilt bytes.Buffer
			require.NoError(t, Rebuild(bytes.NewReader(base), bytes.NewReader(delta.Bytes()), &rebuilt))
			want := createBytes(t, work)
			if !bytes.Equal(want, rebuilt.Bytes()) {
				t.Fatalf("rebuilt archive differs from the folder's:\nwant %v\ngot  %v", listing(t, want), listing(t, rebuilt.Bytes()))
			}
		})
	}
}

func index(t *testing.T, bundle []byte) *Index {
	t.Helper()
	x, err := ReadIndex(bytes.NewReader(bundle))
	require.NoError(t, err)
	return x
}

// One index serves many deltas: making a delta leaves it as it was.
func TestDeltaLeavesItsIndexAsItWas(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 7))
	base := createBytes(t, deltaTree(t, r))
	x := index(t, base)
	work := t.TempDir()
	require.NoError(t, Extract(bytes.NewReader(base), work, DefaultLimits))
	mutate(t, r, work)
	var first, second bytes.Buffer
	_, err := CreateDelta(work, x, "sha256:base", &first)
	require.NoError(t, err)
	_, err = CreateDelta(work, x, "sha256:base", &second)
	require.NoError(t, err)
	require.Equal(t, first.Bytes(), second.Bytes())
	var rebuilt bytes.Buffer
	require.NoError(t, Rebuild(bytes.NewReader(base), bytes.NewReader(second.Bytes()), &rebuilt))
	require.Equal(t, createBytes(t, work), rebuilt.Bytes())
}

// The cache reads a bundle once while it keeps its index, and keeps no more entries than it
// may, dropping the least recently used index first.
func TestIndexCache(t *testing.T) {
	bundles := map[string][]byte{}
	for i, n := range []int{3, 4, 9} { // files per bundle
		dir := t.TempDir()
		for f := range n - 1 {
			require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprint("f", f)), []byte(fmt.Sprint(i, f)), 0o644))
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, "last"), nil, 0o644))
		bundles[fmt.Sprint("b", n)] = createBytes(t, dir)
	}
	reads := map[string]int{}
	c := NewIndexCache(8)
	get := func(d string) *Index {
		t.Helper()
		x, err := c.Index(d, func() (io.ReadCloser, error) {
			reads[d]++
			return io.NopCloser(bytes.NewReader(bundles[d])), nil
		})
		require.NoError(t, err)
		return x
	}
	require.Equal(t, 3, get("b3").Len())
	require.Same(t, get("b3"), get("b3"))
	require.Equal(t, 1, reads["b3"], "read once, then kept")
	get("b4") // 7 entries kept in all
	get("b3") // b3 used last: b4 goes first
	get("b9") // more than the cache holds: read, not kept
	get("b9")
	require.Equal(t, 2, reads["b9"])
	get("b3")
	require.Equal(t, 1, reads["b3"], "neither of the others pushed it out")
	dir := t.TempDir()
	for f := range 5 {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprint("g", f)), nil, 0o644))
	}
	bundles["b5"] = createBytes(t, dir)
	get("b5") // 3 + 4 + 5 > 8: b4, used least recently, goes
	get("b3")
	require.Equal(t, 1, reads["b3"], "kept: dropping b4 made room")
	get("b4")
	require.Equal(t, 2, reads["b4"], "dropped first")
	_, err := c.Index("missing", func() (io.ReadCloser, error) { return nil, os.ErrNotExist })
	require.ErrorIs(t, err, os.ErrNotExist)
}

// Jobs of one bundle that end together read it once: the others wait for that read.
func TestIndexCacheReadsABundleOnceForJobsEndingTogether(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644))
	data := createBytes(t, dir)
	c := NewIndexCache(100)
	var reads atomic.Int32
	reading, release := make(chan struct{}), make(chan struct{})
	open := func() (io.ReadCloser, error) {
		if reads.Add(1) == 1 {
			close(reading)
			<-release
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	}
	const jobs = 8
	got := make(chan *Index, jobs)
	index := func() {
		x, err := c.Index("d", open)
		assert.NoError(t, err)
		got <- x
	}
	go index()
	<-reading // the first job's end reads the bundle; the others end meanwhile
	calling := make(chan struct{}, jobs)
	for range jobs - 1 {
		go func() { calling <- struct{}{}; index() }()
	}
	for range jobs - 1 {
		<-calling
	}
	close(release)
	first := <-got
	for range jobs - 1 {
		require.Same(t, first, <-got)
	}
	require.EqualValues(t, 1, reads.Load(), "the bundle was read once")
}

func listing(t *testing.T, archive []byte) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, Extract(bytes.NewReader(archive), dir, DefaultLimits))
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		fi, _ := d.Info()
		rel, _ := filepath.Rel(dir, p)
		out = append(out, fmt.Sprintf("%s %v %d %s", rel, fi.Mode(), fi.Size(), fi.ModTime().Format(time.RFC3339)))
		return nil
	})
	return strings.Join(out, "\n     ")
}

// TestDeltaHoldsOnlyChanges: a folder with a large unchanged file and a small new result
// stores the result, not the large file.
func TestDeltaHoldsOnlyChanges(t *testing.T) {
	src := t.TempDir()
	big := make([]byte, 4<<20)
	rc := rand.NewChaCha8([32]byte{1})
	rc.Read(big) // incompressible
	require.NoError(t, os.WriteFile(filepath.Join(src, "weights.bin"), big, 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(src, "main.py"), []byte("print(1)\n"), 0o644))
	base := createBytes(t, src)
	work := t.TempDir()
	require.NoError(t, Extract(bytes.NewReader(base), work, DefaultLimits))
	require.NoError(t, os.WriteFile(filepath.Join(work, "result.json"), []byte(`{"loss": 0.1}`), 0o644))
	require.NoError(t, os.Remove(filepath.Join(work, "main.py")))

	var delta bytes.Buffer
	_, err := CreateDelta(work, index(t, base), "sha256:b", &delta)
	require.NoError(t, err)
	require.Less(t, delta.Len(), 4096, "the delta holds the 4 MiB file")
	require.Greater(t, len(base), 4<<20)

	dst := t.TempDir()
	var whole bytes.Buffer
	require.NoError(t, Rebuild(bytes.NewReader(base), &delta, &whole))
	require.NoError(t, Extract(&whole, dst, DefaultLimits))
	got, err := os.ReadFile(filepath.Join(dst, "weights.bin"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, got))
	require.FileExists(t, filepath.Join(dst, "result.json"))
	require.NoFileExists(t, filepath.Join(dst, "main.py"))
}

func TestDeltaBaseOfWholeArchive(t *testing.T) {
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644))
	got, err := DeltaBase(bytes.NewReader(createBytes(t, src)))
	require.NoError(t, err)
	require.Empty(t, got)
	got, err = DeltaBase(bytes.NewReader(createBytes(t, t.TempDir())))
	require.NoError(t, err)
	require.Empty(t, got)
	_, err = DeltaBase(strings.NewReader("not gzip"))
	require.ErrorContains(t, err, "archive")
}

func TestWalkCompare(t *testing.T) {
	ordered := []string{"a", "a/b", "a/b/c", "a/c", "a-b", "a.b", "a0", "b"}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			require.Equal(t, want, walkCompare(ordered[i], ordered[j]), "%s vs %s", ordered[i], ordered[j])
		}
	}
}

// BenchmarkArchive compares the whole archive of a trial's folder (a 16 MiB dataset, its code,
// and the small result it wrote) with the delta against its bundle: bytes stored and time.
func BenchmarkArchive(b *testing.B) {
	src := b.TempDir()
	data := make([]byte, 16<<20)
	rc := rand.NewChaCha8([32]byte{2})
	rc.Read(data[:8<<20]) // half incompressible, half zeros
	if err := os.WriteFile(filepath.Join(src, "data.bin"), data, 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "main.py"), []byte("print('train')\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	var base bytes.Buffer
	if _, err := Create(src, &base, Options{}); err != nil {
		b.Fatal(err)
	}
	work := b.TempDir()
	if err := Extract(bytes.NewReader(base.Bytes()), work, DefaultLimits); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "result.json"), []byte(`{"accuracy": 0.981}`), 0o644); err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	b.Run("whole", func(b *testing.B) {
		for b.Loop() {
			out.Reset()
			if _, err := Create(work, &out, Options{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(out.Len()), "stored-bytes")
	})
	b.Run("delta", func(b *testing.B) {
		for b.Loop() {
			out.Reset()
			x, err := ReadIndex(bytes.NewReader(base.Bytes()))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := CreateDelta(work, x, "sha256:b", &out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(out.Len()), "stored-bytes")
	})
	b.Run("delta-kept-index", func(b *testing.B) { // the bundle's index kept from an earlier job (IndexCache)
		x, err := ReadIndex(bytes.NewReader(base.Bytes()))
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			out.Reset()
			if _, err := CreateDelta(work, x, "sha256:b", &out); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(out.Len()), "stored-bytes")
	})
}
