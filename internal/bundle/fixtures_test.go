package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the files under testdata/ from the generators")

// The hostile archives are committed under testdata/ so they can be inspected with tar and
// reused by other tools; TestFixturesUpToDate checks they are what the generators below make,
// and `go test ./internal/bundle -run TestFixturesUpToDate -update` rewrites them.

var fixtureTime = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// hostileLimits are the limits the hostile fixtures are extracted with.
var hostileLimits = Limits{MaxBytes: 4 << 20, MaxEntries: 1000}

type hostile struct {
	name    string // file under testdata/hostile/
	wantErr string // part of the one-line error Extract must return
	build   func() []byte
}

type tent struct {
	hdr  tar.Header
	body []byte
}

func reg(name, body string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: []byte(body)}
}

func dir(name string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func symlink(name, target string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) tent {
	return tent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

func special(name string, flag byte) tent {
	return tent{hdr: tar.Header{Typeflag: flag, Name: name, Mode: 0o644, Devmajor: 1, Devminor: 3}}
}

// rawTar writes entries as a tar stream, with fixed times and owners so it is reproducible.
func rawTar(entries ...tent) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.ModTime = fixtureTime
		if h.Format == tar.FormatUnknown {
			h.Format = tar.FormatPAX
		}
		if err := tw.WriteHeader(&h); err != nil {
			panic(err)
		}
		if _, err := tw.Write(e.body); err != nil {
			panic(err)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func gz(data []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	if _, err := zw.Write(data); err != nil {
		panic(err)
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func targz(entries ...tent) []byte { return gz(rawTar(entries...)) }

// noise returns n bytes that do not compress, the same every time.
func noise(n int) []byte {
	out := make([]byte, 0, n+sha256.Size)
	for i := 0; len(out) < n; i++ {
		s := sha256.Sum256([]byte(strconv.Itoa(i)))
		out = append(out, s[:]...)
	}
	return out[:n]
}

// absoluteEscape is where the absolute-path fixtures try to write.
const absoluteEscape = "/atlas-bundle-test-escape"

func hostileFixtures() []hostile {
	return []hostile{
		{"dotdot.tar.gz", `".." path component`, func() []byte { return targz(reg("../outside/pwned", "x")) }},
		{"dotdot-nested.tar.gz", `".." path component`, func() []byte {
			return targz(dir("a/"), reg("a/../../outside/pwned", "x"))
		}},
		{"dotdot-backslash.tar.gz", `".." path component`, func() []byte { return targz(reg(`..\outside\pwned`, "x")) }},
		{"dotdot-pax-path.tar.gz", `".." path component`, func() []byte {
			// A name longer than 100 bytes is carried in a PAX record, not the ustar header.
			return targz(reg("../outside/"+strings.Repeat("p", 120), "x"))
		}},
		{"absolute.tar.gz", "absolute path", func() []byte { return targz(reg(absoluteEscape+"/pwned", "x")) }},
		{"absolute-drive.tar.gz", "absolute path", func() []byte { return targz(reg("C:/outside/pwned", "x")) }},
		{"symlink-absolute.tar.gz", "link pointing outside", func() []byte {
			return targz(symlink("etc", "/etc"))
		}},
		{"symlink-absolute-then-file.tar.gz", "link pointing outside", func() []byte {
			return targz(symlink("escape", absoluteEscape), reg("escape/pwned", "x"))
		}},
		{"symlink-relative.tar.gz", "link pointing outside", func() []byte {
			return targz(symlink("up", "../outside"))
		}},
		{"symlink-nested.tar.gz", "link pointing outside", func() []byte {
			return targz(dir("a/"), dir("a/b/"), symlink("a/b/c", "../../../outside"))
		}},
		{"symlink-dir-then-file.tar.gz", "link pointing outside", func() []byte {
			return targz(symlink("up", "../outside"), reg("up/pwned", "x"))
		}},
		{"symlink-parent-then-file.tar.gz", "link pointing outside", func() []byte {
			return targz(symlink("up", ".."), reg("up/outside/pwned", "x"))
		}},
		{"symlink-chain.tar.gz", "link pointing outside", func() []byte {
			// "l" leads back to the root, so "l/../.." is the root's parent, although it reads as
			// if it stayed in d1.
			return targz(dir("d1/"), dir("d1/d2/"), symlink("d1/d2/l", "../.."), symlink("d1/d2/y", "l/../../outside"))
		}},
		{"symlink-chain-then-file.tar.gz", "link pointing outside", func() []byte {
			return targz(dir("d1/"), dir("d1/d2/"), symlink("d1/d2/l", "../.."), symlink("d1/d2/y", "l/../../outside"),
				reg("d1/d2/y/pwned", "x"))
		}},
		{"symlink-inside-then-file.tar.gz", "already has a file or directory", func() []byte {
			// Writing through a link, even one that stays inside, is refused.
			return targz(dir("sub/"), symlink("l", "sub"), reg("l/x", "x"))
		}},
		{"symlink-empty-target.tar.gz", "link pointing outside", func() []byte { return targz(symlink("l", "")) }},
		{"hardlink-outside.tar.gz", "hard link pointing outside", func() []byte {
			return targz(hardlink("h", "../outside/secret"))
		}},
		{"hardlink-absolute.tar.gz", "hard link pointing outside", func() []byte {
			return targz(hardlink("h", "/etc/passwd"))
		}},
		{"hardlink-missing.tar.gz", "not in the bundle", func() []byte { return targz(hardlink("h", "missing")) }},
		{"hardlink-to-dir.tar.gz", "not a regular file", func() []byte { return targz(dir("d/"), hardlink("h", "d")) }},
		{"hardlink-to-symlink.tar.gz", "not in the bundle", func() []byte {
			// Links are created last, so a hard link cannot reach through one.
			return targz(symlink("l", "."), hardlink("h", "l"))
		}},
		{"char-device.tar.gz", "unsupported type", func() []byte { return targz(special("null", tar.TypeChar)) }},
		{"block-device.tar.gz", "unsupported type", func() []byte { return targz(special("sda", tar.TypeBlock)) }},
		{"fifo.tar.gz", "unsupported type", func() []byte { return targz(special("pipe", tar.TypeFifo)) }},
		{"bomb.tar.gz", "expands to more than", func() []byte {
			return targz(reg("zeros", string(make([]byte, 32<<20))))
		}},
		{"bomb-many-files.tar.gz", "expands to more than", func() []byte {
			var es []tent
			for i := range 16 {
				es = append(es, reg(fmt.Sprintf("zeros-%02d", i), string(make([]byte, 1<<20))))
			}
			return targz(es...)
		}},
		{"bomb-trailing.tar.gz", "expands to more than", func() []byte {
			// Tar readers stop at the end-of-archive marker; the gzip stream goes on.
			return gz(append(rawTar(reg("ok", "x")), make([]byte, 64<<20)...))
		}},
		{"too-many-entries.tar.gz", "more than 1000 entries", func() []byte {
			var es []tent
			for i := range hostileLimits.MaxEntries + 1 {
				es = append(es, reg(fmt.Sprintf("f%04d", i), ""))
			}
			return targz(es...)
		}},
		{"truncated.tar.gz", "truncated or corrupt", func() []byte {
			b := targz(reg("a", "hello"), reg("big", string(noise(64<<10))))
			return b[:len(b)/2]
		}},
		{"truncated-header.tar.gz", "truncated or corrupt", func() []byte {
			return gz(rawTar(reg("a", "hello"))[:700])
		}},
		{"bad-checksum.tar.gz", "truncated or corrupt", func() []byte {
			b := targz(reg("a", "hello"))
			b[len(b)-8] ^= 0xff // the CRC-32 in the gzip trailer
			return b
		}},
		{"not-gzip.tar.gz", "not a gzip file", func() []byte { return rawTar(reg("a", "hello")) }},
		{"empty.tar.gz", "not a gzip file", func() []byte { return nil }},
		{"garbage.tar.gz", "truncated or corrupt", func() []byte { return gz(noise(4096)) }},
	}
}

// fuzzSeedMax keeps the fuzz seed corpus to the small fixtures.
const fuzzSeedMax = 8 << 10

func TestFixturesUpToDate(t *testing.T) {
	t.Parallel()
	if raceEnabled && !*update {
		t.Skip("nothing concurrent here, and compressing the bombs is slow under -race")
	}
	if *update {
		require.NoError(t, os.RemoveAll(filepath.Join("testdata", "hostile")))
		require.NoError(t, os.MkdirAll(filepath.Join("testdata", "hostile"), 0o755))
		require.NoError(t, os.MkdirAll(filepath.Join("testdata", "fuzz", "FuzzExtract"), 0o755))
	}
	for _, h := range hostileFixtures() {
		want := h.build()
		p := filepath.Join("testdata", "hostile", h.name)
		seed := filepath.Join("testdata", "fuzz", "FuzzExtract", strings.TrimSuffix(h.name, ".tar.gz"))
		if *update {
			require.NoError(t, os.WriteFile(p, want, 0o644))
			if len(want) <= fuzzSeedMax {
				require.NoError(t, os.WriteFile(seed, fuzzCorpusFile(want), 0o644))
			}
			continue
		}
		got, err := os.ReadFile(p)
		require.NoError(t, err, "run go test ./internal/bundle -run TestFixturesUpToDate -update")
		require.True(t, bytes.Equal(want, got), "%s is stale: run go test ./internal/bundle -run TestFixturesUpToDate -update", p)
	}
}

// fuzzCorpusFile encodes one []byte input in the format of testdata/fuzz.
func fuzzCorpusFile(b []byte) []byte {
	return []byte("go test fuzz v1\n[]byte(" + strconv.Quote(string(b)) + ")\n")
}
