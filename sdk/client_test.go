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

// A download follows the server's redirect into the blob store without the token, which goes
// only to the server itself; --debug names the store without the URL's signature.
func TestDownloadFollowsRedirectWithoutTheToken(t *testing.T) {
	store := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("Cookie") != "" {
			http.Error(w, "<Error><Code>InvalidRequest</Code><Message>two kinds of authorization</Message></Error>", http.StatusBadRequest)
			return
		}
		if r.URL.Query().Get("X-Amz-Signature") != "good" {
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>")
			return
		}
		io.WriteString(w, "archive bytes")
	}))
	defer store.Close()
	var sawHeader, sameOriginToken string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/jobs/j/archive":
			sawHeader = r.Header.Get(RedirectHeader)
			http.Redirect(w, r, store.URL+"/bucket/sha256/abc?X-Amz-Signature=good", http.StatusTemporaryRedirect)
		case "/api/v1/jobs/expired/archive":
			http.Redirect(w, r, store.URL+"/bucket/sha256/abc?X-Amz-Signature=old", http.StatusTemporaryRedirect)
		case "/api/v1/jobs/moved/bundle":
			http.Redirect(w, r, "/here", http.StatusTemporaryRedirect)
		case "/here":
			sameOriginToken = r.Header.Get("Authorization")
			io.WriteString(w, "bundle bytes")
		}
	}))
	defer srv.Close()
	var debug bytes.Buffer
	c := New(srv.URL, "secret-token")
	c.SetDebug(&debug)
	ctx := context.Background()

	rc, err := c.Archive(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(rc)
	rc.Close()
	if string(data) != "archive bytes" {
		t.Fatalf("got %q", data)
	}
	if sawHeader != "storage" {
		t.Errorf("the request did not say it follows redirects into the store: %q", sawHeader)
	}
	if want := "-> 200 OK from " + store.URL + " ("; !strings.Contains(debug.String(), want) {
		t.Errorf("debug output lacks %q:\n%s", want, debug.String())
	}
	if strings.Contains(debug.String(), "Signature") {
		t.Errorf("debug output shows the presigned URL:\n%s", debug.String())
	}

	_, err = c.Archive(ctx, "expired")
	var e *Error
	if !errors.As(err, &e) || e.Status != http.StatusForbidden ||
		e.Message != "the blob store at "+strings.TrimPrefix(store.URL, "http://")+" answered 403 Forbidden: AccessDenied Request has expired" {
		t.Fatalf("want the store's error on one line, got %v", err)
	}

	rc, err = c.Bundle(ctx, "moved")
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if sameOriginToken != "Bearer secret-token" {
		t.Errorf("a redirect within the server keeps the token, got %q", sameOriginToken)
	}
}
