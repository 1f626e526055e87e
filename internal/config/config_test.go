package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/atlasgo/atlas/internal/atlas"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, []byte(content), 0o644))
}

// useHome points $FOUNDATIONS_HOME at a fresh directory. Tests that call it cannot be parallel.
func useHome(t *testing.T) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("FOUNDATIONS_HOME", home)
	return home
}

func TestParseJobValues(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile(filepath.Join("testdata", "job", "full.yaml"))
	require.NoError(t, err)
	j, err := ParseJob("job.config.yaml", data)
	require.NoError(t, err)
	require.Empty(t, j.Warnings)
	require.Equal(t, "mnist", j.ProjectName)
	require.Equal(t, "INFO", j.LogLevel)
	require.Equal(t, 2, *j.NumGPUs)
	require.InDelta(t, 7.5, *j.RAMGB, 0)
	require.Equal(t, 10, *j.Priority)
	require.Equal(t, []string{"python", "main.py", "--epochs", "3"}, j.Entrypoint)
	require.Equal(t, map[string]any{
		"lr":        0.001,
		"layers":    []any{64, 32},
		"optimizer": map[string]any{"name": "adam", "betas": []any{0.9, 0.999}},
		"use_bn":    true,
		"note":      nil,
		"tag":       "007",
	}, j.Params)
	require.Equal(t, atlas.Worker{
		Image:       "atlas/worker:latest",
		Entrypoint:  []string{"python"},
		Command:     []string{"main.py", "--fast"},
		WorkingDir:  "/job",
		Environment: map[string]string{"CUDA_VISIBLE_DEVICES": "0", "DEBUG": "true", "NAME": "run"},
		Volumes: map[string]atlas.Volume{
			"/data/mnist": {Bind: "/data", Mode: "ro"},
			"/scratch":    {Bind: "/scratch", Mode: "rw"},
		},
	}, j.Worker)
}

func TestParseJobUnset(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{"", "# only a comment\n", "~\n", "---\n", "num_gpus:\nram: ~\n"} {
		j, err := ParseJob("job.config.yaml", []byte(doc))
		require.NoError(t, err, "%q", doc)
		require.Nil(t, j.NumGPUs)
		require.Nil(t, j.RAMGB)
		require.Nil(t, j.Priority)
		require.Nil(t, j.Params)
	}
	zero, err := ParseJob("job.config.yaml", []byte("num_gpus: 0\n"))
	require.NoError(t, err)
	require.NotNil(t, zero.NumGPUs, "0 GPUs is a value, not 'unset'")
	require.Zero(t, *zero.NumGPUs)
}

func TestParseJobWarnings(t *testing.T) {
	t.Parallel()
	j, err := ParseJob("job.config.yaml", []byte("project_name: p\ngpus: 1\nworker:\n  image: x\n  imagee: y\n  volumes:\n    /d:\n      bind: /d\n      rw: true\n"))
	require.NoError(t, err)
	require.Equal(t, []string{
		`job.config.yaml:2: unknown key "gpus" (ignored)`,
		`job.config.yaml:5: unknown key "worker.imagee" (ignored)`,
		`job.config.yaml:9: unknown key "worker.volumes./d.rw" (ignored)`,
	}, j.Warnings)
	require.Equal(t, "x", j.Worker.Image, "known keys still apply")
}

func TestParseJobDuplicateKeyLastWins(t *testing.T) {
	t.Parallel()
	j, err := ParseJob("job.config.yaml", []byte("num_gpus: 1\nnum_gpus: 2\n"))
	require.NoError(t, err)
	require.Equal(t, 2, *j.NumGPUs)
	require.Equal(t, []string{`job.config.yaml:2: key "num_gpus" is given twice (first on line 1); the last one is used`}, j.Warnings)
}

func TestParseJobErrorsAreOneLine(t *testing.T) {
	t.Parallel()
	for _, doc := range []string{
		"\"a\\nb\": [\n",
		"worker:\n  volumes:\n    \"/a\\nb\": {bind: x}\n",
		"worker:\n  environment:\n    \"x\\ny\": [1]\n",
		"params:\n  \"a\\rb\": .nan\n",
		"log_level: \"a\\nb\"\n",
		"project_name: \"a\\nb/c\"\n",
		"num_gpus: \"1\\n2\"\n",
	} {
		_, err := ParseJob("dir\nname/job.config.yaml", []byte(doc))
		require.Error(t, err, doc)
		require.NotContains(t, err.Error(), "\n", doc)
		require.NotContains(t, err.Error(), "\r", doc)
	}
}

func TestParseJobParamsAreJSON(t *testing.T) {
	t.Parallel()
	j, err := ParseJob("job.config.yaml", []byte("params:\n  when: 2024-01-02\n  big: 12345678901234\n  list: [a, 1, 1.5, true, ~]\n"))
	require.NoError(t, err)
	b, err := json.Marshal(j.Params)
	require.NoError(t, err)
	require.JSONEq(t, `{"when":"2024-01-02","big":12345678901234,"list":["a",1,1.5,true,null]}`, string(b))
}

func TestValidateProjectName(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"p", "my project", "проект", strings.Repeat("a", 200), "a.b-c_d"} {
		require.NoError(t, ValidateProjectName(ok), ok)
	}
	for _, bad := range []string{"", "a/b", `a\b`, "a\x00b", " p", "p ", strings.Repeat("a", 201)} {
		err := ValidateProjectName(bad)
		require.ErrorIs(t, err, atlas.ErrInvalid, "%q", bad)
		require.NotContains(t, err.Error(), "\n")
	}
}

func TestLoadJob(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	j, raw, err := LoadJob(dir)
	require.NoError(t, err, "no job.config.yaml is an empty config")
	require.Equal(t, &Job{}, j)
	require.Nil(t, raw)

	write(t, filepath.Join(dir, JobConfigFile), "num_gpus: 1\n")
	j, raw, err = LoadJob(dir)
	require.NoError(t, err)
	require.Equal(t, 1, *j.NumGPUs)
	require.Equal(t, "num_gpus: 1\n", string(raw))

	write(t, filepath.Join(dir, JobConfigFile), "num_gpus: x\n")
	_, _, err = LoadJob(dir)
	requireConfigError(t, err, filepath.Join(dir, JobConfigFile), true)
	require.Equal(t, filepath.Join(dir, JobConfigFile)+`:1: num_gpus: want an integer, got the string "x"`, err.Error())
}

func TestErrorFormat(t *testing.T) {
	t.Parallel()
	require.Equal(t, "f.yaml:3: k: msg", (&Error{File: "f.yaml", Line: 3, Key: "k", Msg: "msg"}).Error())
	require.Equal(t, "f.yaml: k: msg", (&Error{File: "f.yaml", Key: "k", Msg: "msg"}).Error())
	require.Equal(t, "f.yaml:3: msg", (&Error{File: "f.yaml", Line: 3, Msg: "msg"}).Error())
	require.Equal(t, `f.yaml:3: a\nb: msg\tx`, (&Error{File: "f.yaml", Line: 3, Key: "a\nb", Msg: "msg\tx"}).Error())
}

func TestSyntaxErrorLines(t *testing.T) {
	t.Parallel()
	// yaml.v3 numbers some of its errors from 0 and leaves others unnumbered; check each kind
	// lands on the line a person would point at.
	for _, tc := range []struct {
		doc  string
		line int
	}{
		{"a: b: c\n", 1},
		{"x: 1\na: b: c\n", 2},
		{"x: 1\ny: [1, 2\nz: 3\n", 2},
		{"x: 1\n- a\n", 2},
		{"- a\nb: 1\n", 2},
		{"x: 1\ny: {a: 1\n", 2},
		{"project_name: broken\nlog_level: INFO\n\nparams: {a: 1\nnum_gpus: 1\n", 4},
		{"\tx: 1\n", 1},
		{"x: 1\n\ty: 1\n", 2},
		{"x: 1\ny: 2\nz: *nope\n", 3},
		{"x: 1\ny: 2\nz: \x01\n", 3},
		{"x: 1\ny: \xff\n", 2},
		{"x: 1\ny: @z\n", 2},
	} {
		_, err := ParseJob("f.yaml", []byte(tc.doc))
		require.Error(t, err, "%q", tc.doc)
		var ce *Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, tc.line, ce.Line, "%q: %v", tc.doc, err)
		require.True(t, strings.HasPrefix(ce.Msg, "invalid YAML: "), ce.Msg)
	}
}

func TestHome(t *testing.T) {
	t.Setenv("FOUNDATIONS_HOME", "/opt/atlas")
	require.Equal(t, "/opt/atlas", Home())
	t.Setenv("FOUNDATIONS_HOME", "")
	t.Setenv("HOME", "/home/someone")
	require.Equal(t, "/home/someone/.foundations", Home())
}

func TestLoadSubmissionLookupOrder(t *testing.T) {
	home := useHome(t)
	cwd := t.TempDir()
	write(t, filepath.Join(home, "config", "submission", "aws.config.yaml"), "scheduler_url: http://home:1\n")
	write(t, filepath.Join(home, "config", "submission", "gcp.config.yaml"), "scheduler_url: http://home-gcp:1\n")
	write(t, filepath.Join(cwd, "config", "submission", "aws.config.yaml"), "scheduler_url: http://project:1/\n")

	s, err := LoadSubmission(cwd, "aws")
	require.NoError(t, err)
	require.Equal(t, &Submission{Name: "aws", Path: filepath.Join(cwd, "config", "submission", "aws.config.yaml"), SchedulerURL: "http://project:1"}, s)

	s, err = LoadSubmission(cwd, "gcp")
	require.NoError(t, err)
	require.Equal(t, "http://home-gcp:1", s.SchedulerURL)
	require.Equal(t, filepath.Join(home, "config", "submission", "gcp.config.yaml"), s.Path)

	_, err = LoadSubmission(cwd, "azure")
	require.ErrorIs(t, err, atlas.ErrNotFound)
	require.Contains(t, err.Error(), `"azure"`)
	require.Contains(t, err.Error(), filepath.Join(cwd, "config", "submission", "azure.config.yaml"))
	require.Contains(t, err.Error(), filepath.Join(home, "config", "submission", "azure.config.yaml"))
	require.NotContains(t, err.Error(), "\n")

	// A project config without scheduler_url (other keys only) leaves the scheduler to the
	// home config of that name; with no scheduler_url anywhere, the first one found is named.
	write(t, filepath.Join(cwd, "config", "submission", "aws.config.yaml"), "job_results_root: /somewhere\n")
	s, err = LoadSubmission(cwd, "aws")
	require.NoError(t, err)
	require.Equal(t, "http://home:1", s.SchedulerURL)
	write(t, filepath.Join(cwd, "config", "submission", "gcp.config.yaml"), "# nothing\n")
	write(t, filepath.Join(home, "config", "submission", "gcp.config.yaml"), "token: x\n")
	_, err = LoadSubmission(cwd, "gcp")
	requireConfigError(t, err, filepath.Join(cwd, "config", "submission", "gcp.config.yaml"), false)
	require.Contains(t, err.Error(), "scheduler_url")

	// A broken project config is an error, not a reason to fall back to the home one.
	write(t, filepath.Join(cwd, "config", "submission", "aws.config.yaml"), "scheduler_url: [\n")
	_, err = LoadSubmission(cwd, "aws")
	requireConfigError(t, err, filepath.Join(cwd, "config", "submission", "aws.config.yaml"), true)
}

func TestLoadSubmissionRefusesOddNames(t *testing.T) {
	home := useHome(t)
	write(t, filepath.Join(home, "config", "secret.config.yaml"), "scheduler_url: http://x:1\n")
	for _, name := range []string{"", "../secret", "a/b", `a\b`, ".hidden", ".."} {
		_, err := LoadSubmission(t.TempDir(), name)
		require.ErrorIs(t, err, atlas.ErrInvalid, "%q", name)
	}
}

func TestListSubmissions(t *testing.T) {
	home := useHome(t)
	cwd := t.TempDir()
	require.Empty(t, ListSubmissions(cwd))

	write(t, filepath.Join(home, "config", "submission", "scheduler.config.yaml"), "scheduler_url: http://127.0.0.1:5555\n")
	write(t, filepath.Join(home, "config", "submission", "aws.config.yaml"), "scheduler_url: http://home:1\n")
	write(t, filepath.Join(home, "config", "submission", "broken.config.yaml"), "scheduler_url: ftp://x\n")
	write(t, filepath.Join(home, "config", "submission", "notes.txt"), "not a config")
	write(t, filepath.Join(cwd, "config", "submission", "aws.config.yaml"), "scheduler_url: http://project:1\n")
	write(t, filepath.Join(cwd, "config", "submission", "local.config.yaml"), "scheduler_url: http://local:1\n")

	envs := ListSubmissions(cwd)
	var got []string
	for _, e := range envs {
		got = append(got, e.Name+" "+e.URL)
	}
	require.Equal(t, []string{
		"aws http://project:1", "local http://local:1", // project configs first
		"broken ", "scheduler http://127.0.0.1:5555",
	}, got)
	require.Equal(t, filepath.Join(cwd, "config", "submission", "aws.config.yaml"), envs[0].Path)
	require.ErrorIs(t, envs[2].Err, atlas.ErrInvalid)
	require.NoError(t, envs[0].Err)
}

func TestSubmissionDirs(t *testing.T) {
	home := useHome(t)
	require.Equal(t, []string{filepath.Join("/p", "config", "submission"), filepath.Join(home, "config", "submission")}, SubmissionDirs("/p"))
}

func TestWriteDefaultSubmission(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	wrote, note, err := WriteDefaultSubmission(home, "http://127.0.0.1:5555")
	require.NoError(t, err)
	require.True(t, wrote)
	require.Empty(t, note)
	path := filepath.Join(home, "config", "submission", DefaultEnv+".config.yaml")
	read := func() *Submission {
		data, err := os.ReadFile(path)
		require.NoError(t, err)
		s, err := ParseSubmission(DefaultEnv, path, data)
		require.NoError(t, err)
		return s
	}
	require.Equal(t, "http://127.0.0.1:5555", read().SchedulerURL)

	wrote, _, err = WriteDefaultSubmission(home, "http://127.0.0.1:5555")
	require.NoError(t, err)
	require.False(t, wrote, "nothing to change")

	// The server moved to another port: the file it wrote follows it.
	wrote, _, err = WriteDefaultSubmission(home, "http://127.0.0.1:6000")
	require.NoError(t, err)
	require.True(t, wrote)
	require.Equal(t, "http://127.0.0.1:6000", read().SchedulerURL)

	// A file the user edited is theirs: left alone, with a note when it points elsewhere.
	edited := []byte("scheduler_url: http://remote:5555\ntoken: abc\n")
	require.NoError(t, os.WriteFile(path, edited, 0o644))
	wrote, note, err = WriteDefaultSubmission(home, "http://127.0.0.1:6000")
	require.NoError(t, err)
	require.False(t, wrote)
	require.Contains(t, note, "http://remote:5555")
	again, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, edited, again)
}

func TestDefaultServer(t *testing.T) {
	home := useHome(t)
	s := DefaultServer()
	require.Equal(t, home, s.Home)
	require.Equal(t, 5555, s.Port)
	require.Equal(t, "auto", s.Executor)
	require.Equal(t, 10*time.Second, s.StopGrace)

	// No file: the defaults stay.
	warnings, err := LoadServer(&s)
	require.NoError(t, err)
	require.Empty(t, warnings)
	require.Equal(t, DefaultServer(), s)
}

func TestCredentials(t *testing.T) {
	home := useHome(t)
	require.Empty(t, CredentialFor("http://a:1"), "no file, no token")
	c, err := LoadCredentials()
	require.NoError(t, err)
	require.Empty(t, c.Servers)

	path, err := SaveCredential("http://a:1/", "ann", "tok-a")
	require.NoError(t, err)
	require.Equal(t, filepath.Join(home, CredentialsFile), path)
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "tokens are readable by the user only")

	_, err = SaveCredential("http://b:2", "bob", "tok-b")
	require.NoError(t, err)
	_, err = SaveCredential("http://a:1", "ann", "tok-a2") // replaces, trailing slash or not
	require.NoError(t, err)

	require.Equal(t, "tok-a2", CredentialFor("http://a:1"))
	require.Equal(t, "tok-a2", CredentialFor("http://a:1/"))
	require.Equal(t, "tok-b", CredentialFor("http://b:2"))
	require.Empty(t, CredentialFor("http://c:3"))
	c, err = LoadCredentials()
	require.NoError(t, err)
	require.Len(t, c.Servers, 2)
	require.Equal(t, "bob", c.Servers["http://b:2"].User)

	// A file with a default token, as Atlas wrote it.
	write(t, path, "default:\n  token: old\nservers:\n  http://a:1:\n    token: new\n")
	require.Equal(t, "new", CredentialFor("http://a:1"))
	require.Equal(t, "old", CredentialFor("http://elsewhere:1"))
	_, err = SaveCredential("http://b:2", "bob", "tok-b")
	require.NoError(t, err)
	require.Equal(t, "old", CredentialFor("http://elsewhere:1"), "saving keeps the default token")
	fi, err = os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "a file that was more open is private again")
}

func TestCredentialsHomeIsCreatedPrivate(t *testing.T) {
	home := filepath.Join(t.TempDir(), "new-home")
	t.Setenv("FOUNDATIONS_HOME", home)
	_, err := SaveCredential("http://a:1", "", "t")
	require.NoError(t, err)
	fi, err := os.Stat(home)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
}

func TestCredentialsBrokenFile(t *testing.T) {
	home := useHome(t)
	path := filepath.Join(home, CredentialsFile)
	for _, tc := range []struct{ content, want string }{
		{"servers: [\n", path + ":2: invalid YAML: did not find expected node content"},
		{"default:\n  token: [a, b]\n", path + ":2: cannot unmarshal !!seq into string"},
	} {
		write(t, path, tc.content)
		_, err := LoadCredentials()
		requireConfigError(t, err, path, true)
		require.Equal(t, tc.want, err.Error())
		require.Empty(t, CredentialFor("http://a:1"))
		_, err = SaveCredential("http://a:1", "", "t")
		require.Error(t, err, "a broken file is not overwritten")
		data, rerr := os.ReadFile(path)
		require.NoError(t, rerr)
		require.Equal(t, tc.content, string(data))
	}
}

// The S3 credentials of the server's config are read, never rendered, and a file holding
// them that others may read is warned about.
func TestServerS3Credentials(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(home, "config"), 0o755))
	file := filepath.Join(home, "config", ServerConfigFile)
	data := "blobs: s3://b?endpoint=http://127.0.0.1:9000\ns3_access_key_id: atlas\ns3_secret_access_key: s3cr3t-value\n"
	require.NoError(t, os.WriteFile(file, []byte(data), 0o600))
	s := DefaultServer()
	s.Home = home
	warnings, err := LoadServer(&s)
	require.NoError(t, err)
	require.Empty(t, warnings, "a file only its owner reads is fine")
	require.Equal(t, "atlas", s.S3AccessKeyID)
	require.Equal(t, "s3cr3t-value", s.S3SecretAccessKey)
	out, err := json.Marshal(s)
	require.NoError(t, err)
	require.NotContains(t, string(out), "s3cr3t-value")

	require.NoError(t, os.Chmod(file, 0o644))
	warnings, err = LoadServer(&s)
	require.NoError(t, err)
	require.Equal(t, []string{file + " holds s3_secret_access_key and others may read it: chmod 600 " + file}, warnings)
}
