package sdk

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The real server's side of these calls is tested end to end (test/e2e); these check how the
// client reads answers and what --debug shows.

func TestSetDebugDescribesCallsWithoutTheToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v1/jobs/missing" {
			http.Error(w, `{"error":"job missing not found"}`, http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	}))
	defer srv.Close()
	var out bytes.Buffer
	c := New(srv.URL, "secret-token")
	c.SetDebug(&out)
	if _, err := c.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Job(context.Background(), "missing"); !IsNotFound(err) {
		t.Fatalf("want a 404, got %v", err)
	}
	got := out.String()
	for _, want := range []string{
		"Foundations DEBUG: GET " + srv.URL + "/api/v1/health -> 200 OK (",
		"Foundations DEBUG: GET " + srv.URL + "/api/v1/jobs/missing -> 404 Not Found (",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("debug output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "secret-token") {
		t.Errorf("debug output shows the token:\n%s", got)
	}
	c.SetDebug(nil)
	out.Reset()
	_, _ = c.Health(context.Background())
	if out.Len() != 0 {
		t.Errorf("debug output after SetDebug(nil): %s", out.String())
	}
}

func TestAppendLogAnswers(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/octet-stream" {
			http.Error(w, "want raw bytes", http.StatusUnsupportedMediaType)
			return
		}
		switch r.URL.Query().Get("offset") {
		case "0":
			w.Header().Set(LogLengthHeader, "5")
			io.WriteString(w, `{"length":5}`)
		case "9":
			w.Header().Set(LogLengthHeader, "5")
			http.Error(w, `{"error":"gap"}`, http.StatusConflict)
		default:
			http.Error(w, `{"error":"job j has completed"}`, http.StatusConflict)
		}
	}))
	defer srv.Close()
	c := New(srv.URL, "")
	ctx := context.Background()
	n, err := c.AppendLog(ctx, "j", 0, []byte("hello"))
	if err != nil || n != 5 {
		t.Fatalf("AppendLog = %d, %v; want 5, nil", n, err)
	}
	var gap *LogGapError
	n, err = c.AppendLog(ctx, "j", 9, []byte("x"))
	if !errors.As(err, &gap) || gap.Length != 5 || n != 5 || !IsConflict(err) {
		t.Fatalf("a gap: got %d, %v", n, err)
	}
	_, err = c.AppendLog(ctx, "j", 5, []byte("x"))
	if errors.As(err, &gap) || !IsConflict(err) {
		t.Fatalf("a finished job: want a plain 409, got %v", err)
	}
}
