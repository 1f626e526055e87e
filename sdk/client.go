// Package sdk is the Go client of the Atlas REST API (/api/v1). The foundations CLI uses it,
// and Go programs may too. It depends on the standard library only and never on the server's
// packages.
package sdk

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Client talks to one Atlas server.
type Client struct {
	base  string
	token string
	http  *http.Client
	debug io.Writer
}

// New returns a client for the server at baseURL (e.g. http://127.0.0.1:5555). token may be
// empty.
func New(baseURL, token string) *Client {
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: &http.Client{
		Transport: &http.Transport{
			Proxy:               nil, // the scheduler is reached directly, never through a proxy
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 8,
		},
		CheckRedirect: checkRedirect,
	}}
}

// RedirectHeader is sent with every GET: the client follows a download's redirect into the
// server's blob store (a presigned URL of an S3-compatible server), so the bytes need not pass
// through the server.
const RedirectHeader = "Atlas-Redirect"

// checkRedirect keeps the token and cookies from any other origin than the server's: a
// presigned URL carries its own authorization. (The standard library drops them only for
// another host name, not for another port of the same host.)
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if from := via[0].URL; req.URL.Scheme != from.Scheme || req.URL.Host != from.Host {
		req.Header.Del("Authorization")
		req.Header.Del("Cookie")
	}
	return nil
}

// BaseURL is the server's address.
func (c *Client) BaseURL() string { return c.base }

// SetDebug makes the client describe each HTTP call it makes (method, URL, status, duration)
// on w, one line each; nil turns it off. Tokens are never written.
func (c *Client) SetDebug(w io.Writer) { c.debug = w }

// Error is an error response from the server.
type Error struct {
	Status  int
	Message string
	// Header is the response's header (e.g. X-Log-Length on a 409 to shipped output).
	Header http.Header
}

func (e *Error) Error() string { return e.Message }

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// IsConflict reports whether err is a 409 from the server.
func IsConflict(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusConflict
}

// UnreachableError means the server could not be reached at all.
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Atlas server at %s (is `atlas-server start` running?)", e.URL)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

func (c *Client) newRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if method == http.MethodGet {
		req.Header.Set(RedirectHeader, "storage")
	}
	return req, nil
}

// do sends a request and returns the response if its status is 2xx.
func (c *Client) do(req *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := c.http.Do(req)
	if c.debug != nil {
		status := "no answer: " + fmt.Sprint(err)
		if err == nil {
			status = resp.Status
			if u := resp.Request.URL; u.Host != req.URL.Host {
				status += " from " + u.Scheme + "://" + u.Host // not the URL: it holds a signature
			}
		}
		fmt.Fprintf(c.debug, "Foundations DEBUG: %s %s -> %s (%s)\n", req.Method, req.URL.Redacted(), status,
			time.Since(start).Round(time.Microsecond))
	}
	if err != nil {
		if req.Context().Err() != nil {
			return nil, req.Context().Err()
		}
		return nil, &UnreachableError{URL: c.base, Err: err}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb ErrorBody
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
		msg = eb.Error
	}
	if u := resp.Request.URL; u.Host != req.URL.Host {
		// The blob store the server redirected to: an S3 error document.
		var s3 struct{ Code, Message string }
		_ = xml.Unmarshal(data, &s3)
		msg = strings.TrimSpace(fmt.Sprintf("the blob store at %s answered %s: %s %s", u.Host, resp.Status, s3.Code, s3.Message))
	}
	if msg == "" {
		msg = resp.Status
	}
	return nil, &Error{Status: resp.StatusCode, Message: msg, Header: resp.Header}
}

// call sends a JSON request and decodes a JSON answer into out (if not nil).
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	req, err := c.newRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Whoami says who the client's token belongs to.
func (c *Client) Whoami(ctx context.Context) (*Who, error) {
	var w Who
	return &w, c.call(ctx, http.MethodGet, "/api/v1/whoami", nil, &w)
}

// Health checks the server is up.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	var h Health
	return &h, c.call(ctx, http.MethodGet, "/api/v1/health", nil, &h)
}

// HasBlob reports whether the server stores a blob.
func (c *Client) HasBlob(ctx context.Context, digest string) (bool, error) {
	req, err := c.newRequest(ctx, http.MethodHead, "/api/v1/blobs/"+digest, nil)
	if err != nil {
		return false, err
	}
	resp, err := c.do(req)
	if IsNotFound(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	return true, nil
}

// PutBlob uploads a blob; the server checks it hashes to digest.
func (c *Client) PutBlob(ctx context.Context, digest string, r io.Reader, size int64) error {
	req, err := c.newRequest(ctx, http.MethodPut, "/api/v1/blobs/"+digest, r)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// UploadFile uploads a file as a blob unless the server has it. It reports whether it uploaded.
func (c *Client) UploadFile(ctx context.Context, digest, path string) (bool, error) {
	return c.UploadFileProgress(ctx, digest, path, nil)
}

// UploadFileProgress is UploadFile that, when progress is not nil, calls it as the file is
// sent: how many of its total bytes have gone out so far.
func (c *Client) UploadFileProgress(ctx context.Context, digest, path string, progress func(sent, total int64)) (bool, error) {
	has, err := c.HasBlob(ctx, digest)
	if err != nil || has {
		return false, err
	}
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	var r io.Reader = f
	if progress != nil {
		r = &countingReader{r: f, total: fi.Size(), progress: progress}
	}
	return true, c.PutBlob(ctx, digest, r, fi.Size())
}

// countingReader reports how much of a body has been read.
type countingReader struct {
	r        io.Reader
	sent     int64
	total    int64
	progress func(sent, total int64)
}

func (r *countingReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.sent += int64(n)
		r.progress(r.sent, r.total)
	}
	return n, err
}

// Submit queues a job (or records an execution-mode job).
func (c *Client) Submit(ctx context.Context, spec *JobSpec) (*SubmitResult, error) {
	var r SubmitResult
	return &r, c.call(ctx, http.MethodPost, "/api/v1/jobs", spec, &r)
}

// Clone queues a copy of the job id: the same folder, command and resources, with the params
// and name of spec.
func (c *Client) Clone(ctx context.Context, id string, spec *CloneSpec) (*SubmitResult, error) {
	var r SubmitResult
	return &r, c.call(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/clone", spec, &r)
}

// Job returns one job with its params, metrics, tags and artifacts.
func (c *Client) Job(ctx context.Context, id string) (*Job, error) {
	var j Job
	return &j, c.call(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id), nil, &j)
}

// WaitJob returns the job once its state is no longer one of states, or after timeout (then
// with the state unchanged). The server holds the request open (long poll).
func (c *Client) WaitJob(ctx context.Context, id string, timeout time.Duration, states ...string) (*Job, error) {
	q := url.Values{"wait_while": {strings.Join(states, ",")}, "timeout": {timeout.String()}}
	var j Job
	return &j, c.call(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"?"+q.Encode(), nil, &j)
}

// Jobs lists jobs.
func (c *Client) Jobs(ctx context.Context, o ListOptions) (*JobList, error) {
	q := url.Values{}
	if o.Project != "" {
		q.Set("project", o.Project)
	}
	if len(o.States) > 0 {
		q.Set("state", strings.Join(o.States, ","))
	}
	if len(o.Filters) > 0 {
		data, _ := json.Marshal(o.Filters)
		q.Set("filters", string(data))
	}
	if o.Sort != "" {
		q.Set("sort", o.Sort)
	}
	if o.Desc {
		q.Set("desc", "true")
	}
	if o.Limit != 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	if o.Offset != 0 {
		q.Set("offset", strconv.Itoa(o.Offset))
	}
	if o.Full {
		q.Set("full", "true")
	}
	var l JobList
	return &l, c.call(ctx, http.MethodGet, "/api/v1/jobs?"+q.Encode(), nil, &l)
}

// StopJob stops a running job, or takes a queued one out of the queue.
func (c *Client) StopJob(ctx context.Context, id string) (*Job, error) {
	var j Job
	return &j, c.call(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/stop", nil, &j)
}

// DeleteJob deletes a finished job and everything stored for it.
func (c *Client) DeleteJob(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/api/v1/jobs/"+url.PathEscape(id), nil, nil)
}

// ClearQueue removes queued jobs, of one project when project is not empty.
func (c *Client) ClearQueue(ctx context.Context, project string) (*ClearQueueResult, error) {
	var r ClearQueueResult
	return &r, c.call(ctx, http.MethodPost, "/api/v1/queue/clear", map[string]string{"project": project}, &r)
}

// Queue returns the queue and the running jobs.
func (c *Client) Queue(ctx context.Context) (*Queue, error) {
	var q Queue
	return &q, c.call(ctx, http.MethodGet, "/api/v1/queue", nil, &q)
}

// Logs returns a job's output from offset. With follow the stream stays open until the job has
// finished and all its output was sent. The caller closes the reader.
func (c *Client) Logs(ctx context.Context, id string, offset int64, follow bool) (io.ReadCloser, error) {
	q := url.Values{"offset": {strconv.FormatInt(offset, 10)}}
	if follow {
		q.Set("follow", "true")
	}
	req, err := c.newRequest(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"/logs?"+q.Encode(), nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// AppendLog ships a piece of a job's output: data is the output from byte offset of the job's
// log. The server stores it exactly once (a resend of bytes it has is acknowledged without
// writing) and returns the log's length afterwards. When offset is past the end of the log it
// writes nothing and the error is a *LogGapError whose Length is where to resume.
func (c *Client) AppendLog(ctx context.Context, id string, offset int64, data []byte) (int64, error) {
	q := url.Values{"offset": {strconv.FormatInt(offset, 10)}}
	req, err := c.newRequest(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/logs?"+q.Encode(), bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.do(req)
	var e *Error
	if errors.As(err, &e) && e.Status == http.StatusConflict && e.Header.Get(LogLengthHeader) != "" {
		n, perr := strconv.ParseInt(e.Header.Get(LogLengthHeader), 10, 64)
		if perr == nil {
			return n, &LogGapError{Length: n, Err: e}
		}
	}
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		Length int64 `json:"length"`
	}
	return out.Length, json.NewDecoder(resp.Body).Decode(&out)
}

// LogLengthHeader is the answer header that says how long a job's log is.
const LogLengthHeader = "X-Log-Length"

// LogGapError says shipped output started past the end of the job's log; nothing was written.
type LogGapError struct {
	Length int64 // the log's length: resend from here
	Err    *Error
}

func (e *LogGapError) Error() string { return e.Err.Error() }

func (e *LogGapError) Unwrap() error { return e.Err }

// Archive returns the gzip-compressed tar of a finished job's working directory.
func (c *Client) Archive(ctx context.Context, id string) (io.ReadCloser, error) {
	return c.download(ctx, "/api/v1/jobs/"+url.PathEscape(id)+"/archive")
}

// Bundle returns the gzip-compressed tar of the folder a job was submitted with: what a job
// running on another machine unpacks.
func (c *Client) Bundle(ctx context.Context, id string) (io.ReadCloser, error) {
	return c.download(ctx, "/api/v1/jobs/"+url.PathEscape(id)+"/bundle")
}

// download returns the body of a GET, from the server or the blob store it redirects to.
func (c *Client) download(ctx context.Context, path string) (io.ReadCloser, error) {
	req, err := c.newRequest(ctx, http.MethodGet, path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.do(req)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// Track sends a batch of tracked values for a job.
func (c *Client) Track(ctx context.Context, id string, b *TrackBatch) (*TrackResult, error) {
	var r TrackResult
	return &r, c.call(ctx, http.MethodPost, "/api/v1/jobs/"+url.PathEscape(id)+"/track", b, &r)
}

// MetricSeries returns the points of one metric, downsampled by the server to at most
// maxPoints (0: the server's default).
func (c *Client) MetricSeries(ctx context.Context, id, key string, maxPoints int) (*MetricSeries, error) {
	q := url.Values{}
	if maxPoints > 0 {
		q.Set("max_points", strconv.Itoa(maxPoints))
	}
	var s MetricSeries
	return &s, c.call(ctx, http.MethodGet, "/api/v1/jobs/"+url.PathEscape(id)+"/metrics/"+url.PathEscape(key)+"?"+q.Encode(), nil, &s)
}

// Projects lists projects.
func (c *Client) Projects(ctx context.Context) ([]Project, error) {
	var ps []Project
	return ps, c.call(ctx, http.MethodGet, "/api/v1/projects", nil, &ps)
}

// SubmitSearch starts a hyperparameter search (the job's bundle uploaded first).
func (c *Client) SubmitSearch(ctx context.Context, spec *SearchSpec) (*SearchSubmitResult, error) {
	var r SearchSubmitResult
	return &r, c.call(ctx, http.MethodPost, "/api/v1/searches", spec, &r)
}

// Search returns a search with its trials.
func (c *Client) Search(ctx context.Context, id string) (*Search, error) {
	var s Search
	return &s, c.call(ctx, http.MethodGet, "/api/v1/searches/"+url.PathEscape(id), nil, &s)
}

// WaitSearch returns a search once its version is not since (something shown changed), or
// after timeout. The server holds the request open (long poll).
func (c *Client) WaitSearch(ctx context.Context, id, since string, timeout time.Duration) (*Search, error) {
	q := url.Values{"wait_since": {since}, "timeout": {timeout.String()}}
	var s Search
	return &s, c.call(ctx, http.MethodGet, "/api/v1/searches/"+url.PathEscape(id)+"?"+q.Encode(), nil, &s)
}

// Searches lists the searches of a project ("": every project), newest first, without trials.
func (c *Client) Searches(ctx context.Context, project string) ([]*Search, error) {
	var out []*Search
	err := c.call(ctx, http.MethodGet, "/api/v1/searches?"+url.Values{"project": {project}}.Encode(), nil, &out)
	return out, err
}

// StopSearch stops a search and its trials.
func (c *Client) StopSearch(ctx context.Context, id string) (*Search, error) {
	var s Search
	return &s, c.call(ctx, http.MethodPost, "/api/v1/searches/"+url.PathEscape(id)+"/stop", nil, &s)
}
