package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/atlasgo/atlas/sdk"
)

// blobs measures a large artifact's way through the server: its upload (PUT /blobs), and its
// download streamed through the server and, with S3, from the bucket by a presigned URL; and
// the server's peak memory, which must not grow with the file.
func blobs(args []string) error {
	fs := flag.NewFlagSet("blobs", flag.ExitOnError)
	mb := fs.Int("mb", 200, "artifact size in MiB")
	s3 := fs.String("s3", os.Getenv("ATLAS_TEST_S3_URL"), "an S3 server as http://<key>:<secret>@host:port (scripts/s3-server.sh sets ATLAS_TEST_S3_URL); empty: the local store only")
	fs.Parse(args)
	tmp, err := os.MkdirTemp("", "atlasbench-blobs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, "artifact.bin")
	digest, err := randomFile(path, int64(*mb)<<20)
	if err != nil {
		return err
	}
	stores := []string{""}
	if *s3 != "" {
		stores = append(stores, *s3)
	}
	for _, s3url := range stores {
		if err := blobRun(tmp, path, digest, *mb, s3url); err != nil {
			return err
		}
	}
	return nil
}

func randomFile(path string, size int64) (string, error) {
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(f, h), rand.Reader, size); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), f.Close()
}

func blobRun(tmp, path, digest string, mb int, s3url string) error {
	home, err := os.MkdirTemp(tmp, "home-")
	if err != nil {
		return err
	}
	what := "local store"
	var env []string
	if s3url != "" {
		u, err := url.Parse(s3url)
		if err != nil || u.User == nil {
			return fmt.Errorf("-s3: want http://<key>:<secret>@host:port")
		}
		secret, _ := u.User.Password()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		endpoint := u.Scheme + "://" + u.Host
		cfg := "blobs: s3://atlas-bench-" + hex.EncodeToString(b) + "?endpoint=" + url.QueryEscape(endpoint) + "\n"
		if err := os.MkdirAll(filepath.Join(home, "config"), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(home, "config", "server.config.yaml"), []byte(cfg), 0o600); err != nil {
			return err
		}
		env = []string{"AWS_ACCESS_KEY_ID=" + u.User.Username(), "AWS_SECRET_ACCESS_KEY=" + secret}
		what = "S3 store (" + endpoint + ")"
	}
	srv, err := startServerEnv(home, env)
	if err != nil {
		return err
	}
	defer srv.stop()
	c := sdk.New(srv.url, "")
	ctx := context.Background()

	t0 := time.Now()
	if _, err := c.UploadFile(ctx, digest, path); err != nil {
		return err
	}
	up := time.Since(t0)

	// An artifact of a finished job.
	bundleDigest, bundlePath, err := trivialFolder(filepath.Join(home, "job"), "pass\n")
	if err != nil {
		return err
	}
	if _, err := c.UploadFile(ctx, bundleDigest, bundlePath); err != nil {
		return err
	}
	res, err := c.Submit(ctx, &sdk.JobSpec{Project: "blobs", Command: []string{"main.py"}, BundleDigest: bundleDigest})
	if err != nil {
		return err
	}
	if _, err := c.WaitJob(ctx, res.Job.ID, time.Minute, sdk.StateQueued, sdk.StateStarting, sdk.StateRunning); err != nil {
		return err
	}
	if _, err := c.Track(ctx, res.Job.ID, &sdk.TrackBatch{Artifacts: []sdk.Artifact{{Key: "weights", Filename: "weights.bin", Digest: digest}}}); err != nil {
		return err
	}
	artifact := srv.url + "/api/v1/jobs/" + res.Job.ID + "/artifacts/weights"

	get := func(redirect bool) (time.Duration, string, error) {
		req, _ := http.NewRequest("GET", artifact, nil)
		if redirect {
			req.Header.Set(sdk.RedirectHeader, "storage")
		}
		t0 := time.Now()
		resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.Copy(h, resp.Body)
		if err != nil {
			return 0, "", err
		}
		if resp.StatusCode != http.StatusOK || n != int64(mb)<<20 || "sha256:"+hex.EncodeToString(h.Sum(nil)) != digest {
			return 0, "", fmt.Errorf("download: %s, %d bytes", resp.Status, n)
		}
		return time.Since(t0), resp.Request.URL.Host, nil
	}
	through, _, err := get(false)
	if err != nil {
		return err
	}
	fmt.Printf("%d MiB artifact, %s: upload %.0f MiB/s; download through the server %.0f MiB/s",
		mb, what, float64(mb)/up.Seconds(), float64(mb)/through.Seconds())
	if s3url != "" {
		direct, host, err := get(true)
		if err != nil {
			return err
		}
		fmt.Printf("; presigned from %s %.0f MiB/s", host, float64(mb)/direct.Seconds())
	}
	fmt.Printf("; server peak RSS %s\n", peakRSS(srv.cmd.Process.Pid))
	return c.DeleteJob(ctx, res.Job.ID)
}

// peakRSS is a process's peak resident memory (VmHWM).
func peakRSS(pid int) string { return procStatus(pid, "VmHWM") }

// procStatus is a memory field of /proc/<pid>/status (VmRSS, VmHWM) in MiB.
func procStatus(pid int, field string) string {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(v)
			if kb, err := strconv.Atoi(f[0]); err == nil {
				return fmt.Sprintf("%d MiB", kb>>10)
			}
		}
	}
	return "unknown"
}
