package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/atlasgo/atlas/internal/atlas"
)

// The seeds in testdata/fuzz are the golden inputs (`go test -update` refreshes them).

// FuzzParseJob: whatever the bytes, ParseJob does not panic, and either fails with a one-line
// ErrInvalid naming the file and a line, or returns params that can be stored as JSON and
// one-line warnings.
func FuzzParseJob(f *testing.F) {
	f.Add([]byte("num_gpus: 1\nworker:\n  volumes:\n    /a: {bind: /b, mode: ro}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := ParseJob("job.config.yaml", data)
		if err != nil {
			checkFuzzError(t, err, true)
			return
		}
		for _, w := range j.Warnings {
			if strings.ContainsAny(w, "\r\n") || !strings.HasPrefix(w, "job.config.yaml:") {
				t.Fatalf("bad warning %q", w)
			}
		}
		if _, err := json.Marshal(j.Params); err != nil {
			t.Fatalf("params cannot be stored: %v", err)
		}
		for host, v := range j.Worker.Volumes {
			if !strings.HasPrefix(host, "/") || !strings.HasPrefix(v.Bind, "/") || (v.Mode != "rw" && v.Mode != "ro") {
				t.Fatalf("bad volume %q: %+v", host, v)
			}
		}
		if j.NumGPUs != nil && *j.NumGPUs < 0 {
			t.Fatalf("negative num_gpus %d", *j.NumGPUs)
		}
	})
}

// FuzzParseSubmission: no panic, one-line ErrInvalid errors, and an http(s) URL on success.
func FuzzParseSubmission(f *testing.F) {
	f.Add([]byte("scheduler_url: http://127.0.0.1:5555\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSubmission("env", "env.config.yaml", data)
		if err != nil {
			checkFuzzError(t, err, false)
			return
		}
		if err := validateURL(s.SchedulerURL); err != nil {
			t.Fatalf("accepted %q: %v", s.SchedulerURL, err)
		}
	})
}

func checkFuzzError(t *testing.T, err error, withLine bool) {
	t.Helper()
	msg := err.Error()
	if !errors.Is(err, atlas.ErrInvalid) {
		t.Fatalf("%q is not ErrInvalid", msg)
	}
	if strings.ContainsAny(msg, "\r\n") {
		t.Fatalf("error is not one line: %q", msg)
	}
	var ce *Error
	if !errors.As(err, &ce) || (withLine && ce.Line <= 0) {
		t.Fatalf("error has no line: %q", msg)
	}
}

// FuzzParseSearch: no panic, one-line ErrInvalid errors naming the file and a line, and a
// search whose grid fits and whose parameters are sound.
func FuzzParseSearch(f *testing.F) {
	f.Add([]byte("method: grid\nmetric: m\nsmaller_is_better: true\nparams: {a: {type: int, min: 1, max: 3}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSearch("search.yaml", data)
		if err != nil {
			checkFuzzError(t, err, false)
			return
		}
		if s.Metric == "" || s.Params == nil || s.Trials() < 1 {
			t.Fatalf("accepted a search without metric, params or trials: %+v", s)
		}
		if _, err := json.Marshal(s); err != nil {
			t.Fatalf("search cannot be stored: %v", err)
		}
	})
}
