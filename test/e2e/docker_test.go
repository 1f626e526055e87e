package e2e

// End-to-end tests of the Docker executor: real atlas-server binaries started with
// `--executor docker`, driven by the real foundations CLI, running real jobs in containers of
// the worker image (or images the tests derive from it). Jobs that must wait for the test
// wait for a gate file the test creates in their working directory (the job's folder under
// $FOUNDATIONS_HOME, mounted into the container), or write to a named pipe in a volume.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The seed's walkthrough with the Docker executor: `foundations init`, `foundations submit
// scheduler . main.py` runs in a container of the default worker image with the seed's
// progress lines around the job's output; params, metrics, tags and the artifact are tracked
// as with the process executor (the SDK reaches the server through its unix socket); logs
// stream while the job runs; `get job` returns the final working directory.
func TestDockerWalkthrough(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	work := t.TempDir()
	require.Equal(t, 0, cli(t, s.Home, work, "init", "my_project").Code)
	proj := filepath.Join(work, "my_project")

	since := time.Now()
	out, code := cliCombined(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, code, out)
	id := jobID(t, out)
	banner := strings.Repeat("=", 120)
	requireInOrder(t, out,
		"Foundations INFO: Job submission started. Ctrl-C to cancel.",
		"Foundations INFO: Preparing to bundle contents of "+proj+" for execution. Estimating bundle size.",
		"Foundations INFO: Bundling job contents.",
		"Foundations INFO: Job submitted with ID '"+id+"'.",
		"Foundations INFO: Job queued. Ctrl-C to stop streaming - job will not be interrupted or cancelled.",
		"Foundations INFO: Job running, streaming logs.",
		banner,
		"No user requirements found.",
		banner,
		"epoch 1/5: loss 0.7000",
		"epoch 5/5: loss 0.1681",
		"Foundations INFO: Job '"+id+"' has completed.",
	)
	require.NotContains(t, out, "WARNING")

	j := s.record(t, id)
	require.Equal(t, "completed", j.State)
	require.Equal(t, "docker", j.Executor, "the job ran in a Docker worker")
	require.Equal(t, []string{workerImage}, containerEvents(t, id, since, "create", `{{index .Actor.Attributes "image"}}`),
		"one container, of the default worker image")
	require.Equal(t, "my_project", j.Project)
	require.Equal(t, []string{"main.py"}, j.Command)
	require.EqualValues(t, 3, j.Params["depth"])
	require.EqualValues(t, 5, j.Params["epochs"])
	require.EqualValues(t, 256, j.Params["batch_size"])
	require.EqualValues(t, 0.001, j.Params["learning_rate"])
	require.EqualValues(t, 0.9, j.Metric("accuracy"))
	require.InDelta(t, 0.16807, j.Metric("loss"), 1e-9)
	for _, m := range j.Metrics {
		if m.Key == "loss" {
			require.Equal(t, 5, m.Count, "every loss point is recorded once")
		}
	}
	require.Contains(t, j.Tags, "sample")
	require.Len(t, j.Artifacts, 1)
	require.Equal(t, "Project_README", j.Artifacts[0].Key)
	readme, err := os.ReadFile(filepath.Join(proj, "README.txt"))
	require.NoError(t, err)
	require.Equal(t, readme, s.artifact(t, id, "Project_README"))
	waitContainerGone(t, id, since)

	// Logs stream while the job runs: the job's first line arrives before the test lets it
	// finish. The job writes a file into its working directory, which `get job` returns.
	writeFiles(t, proj, map[string]string{"live.py": `import os
import foundations
with open("written_by_job.txt", "w") as f:
    f.write("from the container\n")
try:
    open(os.path.join(os.path.dirname(foundations.__file__), "tampered.py"), "w")
    print("the SDK is writable", flush=True)
except OSError as e:
    print("SDK write refused: errno %d" % e.errno, flush=True)
print("scheduler url scheme: " + os.environ["FOUNDATIONS_SCHEDULER_URL"].split("://")[0], flush=True)
print("cwd: " + os.getcwd(), flush=True)
` + gateScript})
	p := startCLI(t, s.Home, proj, "submit", "scheduler", ".", "live.py", "gate")
	require.NoError(t, p.Stdout.WaitFor("job is waiting for its gate", 2*time.Minute))
	live := jobID(t, p.Stderr.String())
	require.Equal(t, "running", s.job(t, live).State, "the output arrived while the job ran")
	s.openWorkGate(t, live, "gate")
	res := p.Wait(t)
	require.Equal(t, 0, res.Code, res.String())
	requireInOrder(t, res.Stdout, "SDK write refused: errno 30", "scheduler url scheme: http+unix",
		"cwd: /job/job_source", "job is waiting for its gate", "job passed its gate")
	require.Contains(t, res.Stderr, "Job '"+live+"' has completed.")

	dest := t.TempDir()
	got := cli(t, s.Home, dest, "get", "job", "scheduler", live)
	require.Equal(t, 0, got.Code, got.String())
	for _, f := range []string{"main.py", "live.py", "README.txt", "job.config.yaml", "gate"} {
		require.FileExists(t, filepath.Join(dest, live, f))
	}
	data, err := os.ReadFile(filepath.Join(dest, live, "written_by_job.txt"))
	require.NoError(t, err, "the archive holds what the job wrote")
	require.Equal(t, "from the container\n", string(data))
	got = cli(t, s.Home, dest, "get", "job", "scheduler", id, "--save_dir", filepath.Join(dest, "first"))
	require.Equal(t, 0, got.Code, got.String())
	require.FileExists(t, filepath.Join(dest, "first", "main.py"))
	require.DirExists(t, filepath.Join(dest, "first", "data"))
}

// job.config.yaml's worker section: volumes (rw and ro), environment, image, entrypoint and
// command.
func TestDockerJobConfigWorker(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	rw, ro := t.TempDir(), t.TempDir()
	writeFiles(t, ro, map[string]string{"input.txt": "read me\n"})
	image := tagWorkerImage(t, "tagged")
	proj := newProject(t, "workercfg", map[string]string{
		"job.config.yaml": fmt.Sprintf(`worker:
  image: %s
  entrypoint: ["/bin/sh", "-c"]
  command: ["echo entrypoint is sh && exec python3 job.py"]
  volumes:
    %s:
      bind: /data/rw
      mode: rw
    %s:
      bind: /data/ro
      mode: ro
  environment:
    MY_ENV_VAR: MY_VALUE
    WITH_SPACES: "a b  c"
`, image, rw, ro),
		"job.py": `import os
print("MY_ENV_VAR=" + os.environ.get("MY_ENV_VAR", "unset"))
print("WITH_SPACES=[" + os.environ.get("WITH_SPACES", "unset") + "]")
print("read from ro: " + open("/data/ro/input.txt").read().strip())
with open("/data/rw/out.txt", "w") as f:
    f.write("written in the container\n")
try:
    open("/data/ro/nope.txt", "w").write("x")
    print("ro write succeeded")
except OSError as e:
    print("ro write refused: errno %d" % e.errno)
`,
	})
	since := time.Now()
	// No command on the command line: worker.command is the command.
	res := cli(t, s.Home, proj, "submit", "scheduler", ".")
	require.Equal(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	require.Contains(t, res.Stdout, "entrypoint is sh\n")
	require.Contains(t, res.Stdout, "MY_ENV_VAR=MY_VALUE\n")
	require.Contains(t, res.Stdout, "WITH_SPACES=[a b  c]\n")
	require.Contains(t, res.Stdout, "read from ro: read me\n")
	require.Contains(t, res.Stdout, "ro write refused: errno 30\n", "a ro volume is read-only (EROFS)")
	require.NotContains(t, res.Stdout, "ro write succeeded")
	data, err := os.ReadFile(filepath.Join(rw, "out.txt"))
	require.NoError(t, err, "the job wrote into the rw volume")
	require.Equal(t, "written in the container\n", string(data))
	require.NoFileExists(t, filepath.Join(ro, "nope.txt"))
	require.Equal(t, []string{image}, containerEvents(t, id, since, "create", `{{index .Actor.Attributes "image"}}`),
		"the job ran in the image worker.image names")
	require.Equal(t, "completed", s.record(t, id).State)

	// The command given to submit wins over worker.command and goes after worker.entrypoint.
	res = cli(t, s.Home, proj, "submit", "scheduler", ".", "echo from the command line: $MY_ENV_VAR")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "from the command line: MY_VALUE\n")
	require.NotContains(t, res.Stdout, "entrypoint is sh")
}

// ram sets a real memory limit: the job sees it in its cgroup, and a job allocating far
// more than its limit ends failed, with an out-of-memory reason.
func TestDockerRAMLimit(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	proj := newProject(t, "ram", map[string]string{
		"job.config.yaml": "ram: 0.25\n",
		"limit.py": `import os
for p in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
    if os.path.exists(p):
        print("LIMIT=" + open(p).read().strip(), flush=True)
`,
		"hog.py": `chunks = []
for i in range(1, 65):
    chunks.append(bytearray(b"\x01") * (32 << 20))  # written, so really resident
    print("allocated %d MB" % (32 * i), flush=True)
print("the hog survived", flush=True)
`,
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "limit.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "LIMIT=268435456\n", "ram: 0.25 is a 256 MiB limit the job can see")
	require.EqualValues(t, 0.25, s.record(t, jobID(t, res.Stderr)).RAMGB)

	res = cli(t, s.Home, proj, "submit", "--ram", "0.1", "scheduler", ".", "hog.py")
	require.NotEqual(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	require.Contains(t, res.Stdout, "allocated 32 MB")
	require.NotContains(t, res.Stdout, "the hog survived")
	require.Contains(t, res.Stderr, "Job '"+id+"' has failed")
	j := s.record(t, id)
	require.Equal(t, "failed", j.State)
	require.Contains(t, j.Reason, "out of memory")
	require.NotContains(t, j.Reason, "\n")
}

// Files a job writes into its working directory and into a volume belong to the user who
// submitted it (the CLI runs as uid 1000 when the test runs as root), who can then delete
// them, and the job, without root.
func TestDockerFilesOwnedBySubmitter(t *testing.T) {
	needDocker(t)
	t.Parallel()
	uid, gid := os.Getuid(), os.Getgid()
	var cred *syscall.Credential
	if uid == 0 {
		uid, gid = 1000, 1000
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	s, base := startSharedHomeServer(t)
	shareBinaries(t)
	proj, vol, userHome := filepath.Join(base, "proj"), filepath.Join(base, "vol"), filepath.Join(base, "user")
	require.NoError(t, os.MkdirAll(proj, 0o755))
	wheel := buildWheel(t, proj, "atlas-e2e-ownerhelper", "1.0", "atlas_e2e_ownerhelper", "NAME = 'installed as the submitter'\n")
	writeFiles(t, proj, map[string]string{
		"requirements.txt": "--no-index\n./" + wheel + "\n",
		"job.config.yaml":  fmt.Sprintf("worker:\n  volumes:\n    %s: {bind: /data/out, mode: rw}\n", vol),
		"main.py": `import os
import atlas_e2e_ownerhelper
print(atlas_e2e_ownerhelper.NAME, flush=True)
os.makedirs("results/sub", exist_ok=True)
with open("results/sub/model.txt", "w") as f:
    f.write("trained\n")
os.makedirs("/data/out/dir", exist_ok=True)
with open("/data/out/dir/exported.txt", "w") as f:
    f.write("exported\n")
print("uid %d gid %d" % (os.getuid(), os.getgid()), flush=True)
` + gateScript,
	})
	require.NoError(t, os.MkdirAll(vol, 0o755))
	require.NoError(t, os.MkdirAll(userHome, 0o755))
	for _, d := range []string{proj, vol, userHome} {
		chownTree(t, d, uid, gid)
	}
	userEnv := []string{"HOME=" + userHome}

	res := runAs(t, cred, s.Home, proj, userEnv, cliBin(), "submit", "--stream-job-logs", "False", "scheduler", ".", "main.py", "gate")
	require.Equal(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	s.waitLog(t, id, "job is waiting for its gate")
	for _, rel := range []string{".", "main.py", "results", "results/sub", "results/sub/model.txt"} {
		u, g := fileOwner(t, filepath.Join(s.workDir(id), rel))
		require.Equal(t, [2]int{uid, gid}, [2]int{u, g}, "%s in the working directory belongs to the submitter", rel)
	}
	s.openWorkGate(t, id, "gate")
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State, "reason: %s\nlogs:\n%s", j.Reason, s.logs(t, id))
	require.Contains(t, s.logs(t, id), fmt.Sprintf("uid %d gid %d\n", uid, gid), "the job ran as the submitter")
	require.Contains(t, s.logs(t, id), "installed as the submitter", "requirements install as the submitter")
	envs, err := filepath.Glob(filepath.Join(s.Home, "envs", "*", "*", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, envs, "the requirements environment is cached under $FOUNDATIONS_HOME/envs")
	for _, p := range envs {
		if u, _ := fileOwner(t, p); u != uid {
			t.Errorf("%s in the cached environment belongs to uid %d, not the submitter (%d)", p, u, uid)
		}
	}
	require.Equal(t, fmt.Sprintf("%d:%d", uid, gid), s.record(t, id).RunAs)
	for _, rel := range []string{"dir", "dir/exported.txt"} {
		u, g := fileOwner(t, filepath.Join(vol, rel))
		require.Equal(t, [2]int{uid, gid}, [2]int{u, g}, "%s in the volume belongs to the submitter", rel)
	}

	// The submitter gets the archive, deletes what the job wrote and the job, as themselves.
	res = runAs(t, cred, s.Home, userHome, userEnv, cliBin(), "get", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.FileExists(t, filepath.Join(userHome, id, "results", "sub", "model.txt"))
	res = runAs(t, cred, s.Home, userHome, userEnv, "rm", "-r", filepath.Join(vol, "dir"), filepath.Join(userHome, id))
	require.Equal(t, 0, res.Code, "the submitter deletes the job's files without root:\n%s", res)
	res = runAs(t, cred, s.Home, userHome, userEnv, cliBin(), "delete", "job", "scheduler", id)
	require.Equal(t, 0, res.Code, res.String())
	require.False(t, s.jobExists(t, id))
	require.NoFileExists(t, s.logPath(id))
}

// A job queued from Python with foundations.submit() runs as the user whose script submitted
// it, like one submitted with the CLI.
func TestDockerSDKSubmitRunsAsSubmitter(t *testing.T) {
	needDocker(t)
	if os.Getuid() != 0 {
		t.Skip("needs root to run the submitting script as another user")
	}
	t.Parallel()
	uid, gid := 1000, 1000
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	s, base := startSharedHomeServer(t)
	userHome := filepath.Join(base, "user")
	proj := filepath.Join(userHome, "proj")
	writeFiles(t, proj, map[string]string{
		"main.py": "import os\nopen('mine.txt', 'w').write('x')\nprint('uid %d' % os.getuid())\n",
		"submit.py": `import foundations
d = foundations.submit(scheduler_config="scheduler", command=["main.py"])
print("SUBMITTED=" + d.job_name(), flush=True)
`,
	})
	chownTree(t, userHome, uid, gid)
	py, sdkEnv := userPython(t, cred, s)
	res := runAs(t, cred, s.Home, proj, append(sdkEnv, "HOME="+userHome), py, "submit.py")
	require.Equal(t, 0, res.Code, res.String())
	m := regexp.MustCompile(`SUBMITTED=(\S+)`).FindStringSubmatch(res.Stdout)
	require.NotNil(t, m, res.String())
	id := m[1]
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State)
	require.Contains(t, s.logs(t, id), fmt.Sprintf("uid %d\n", uid))
	require.Equal(t, fmt.Sprintf("%d:%d", uid, gid), s.record(t, id).RunAs)
}

// A local user cannot get a root container by claiming uid 0 in a submission: the job must
// not run as root (here it would write into a root-owned host directory through a volume).
func TestDockerClaimedRootUIDNotTrusted(t *testing.T) {
	needDocker(t)
	if os.Getuid() != 0 {
		t.Skip("needs root to run the submitting script as another user")
	}
	t.Parallel()
	cred := &syscall.Credential{Uid: 1000, Gid: 1000}
	s, base := startSharedHomeServer(t)
	rootOnly := filepath.Join(base, "root-only")
	require.NoError(t, os.MkdirAll(rootOnly, 0o755))
	userHome := filepath.Join(base, "user")
	proj := filepath.Join(userHome, "proj")
	writeFiles(t, proj, map[string]string{
		"job.config.yaml": fmt.Sprintf("worker:\n  volumes:\n    %s: {bind: /target, mode: rw}\n", rootOnly),
		"main.py": `import os
print("job uid %d" % os.getuid(), flush=True)
try:
    open("/target/written-by-job.txt", "w").write("x")
    print("wrote into the root-only directory", flush=True)
except OSError as e:
    print("refused: %s" % e, flush=True)
`,
		"submit.py": `import os, foundations
os.getuid = lambda: 0  # what any local user can put in the request
os.getgid = lambda: 0
try:
    d = foundations.submit(scheduler_config="scheduler", command=["main.py"])
    print("SUBMITTED=" + d.job_name(), flush=True)
except Exception as e:
    print("REFUSED: %s" % e, flush=True)
`,
	})
	chownTree(t, userHome, 1000, 1000)
	py, sdkEnv := userPython(t, cred, s)
	res := runAs(t, cred, s.Home, proj, append(sdkEnv, "HOME="+userHome), py, "submit.py")
	require.Equal(t, 0, res.Code, res.String())
	if m := regexp.MustCompile(`SUBMITTED=(\S+)`).FindStringSubmatch(res.Stdout); m != nil {
		j := s.waitDone(t, m[1])
		require.Equal(t, "1000:1000", s.record(t, m[1]).RunAs, "the kernel's word, not the client's; state %s", j.State)
		require.Contains(t, s.logs(t, m[1]), "job uid 1000")
	}
	require.NoFileExists(t, filepath.Join(rootOnly, "written-by-job.txt"))
}

// requirements.txt (here a wheel shipped in the job folder) is installed in the container
// before the command; the second job with the same file uses the cached environment; another
// image gets its own environment, installed once even when two jobs start with it at once.
func TestDockerRequirementsCached(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t), "--workers", "2")
	proj := newProject(t, "reqs", map[string]string{
		"main.py": "import atlas_e2e_dockerhelper, foundations\nprint(atlas_e2e_dockerhelper.greet())\nfoundations.log_metric('installed', 1)\n",
	})
	wheel := buildWheel(t, proj, "atlas-e2e-dockerhelper", "1.0", "atlas_e2e_dockerhelper",
		"def greet():\n    return 'hello from the local wheel'\n")
	writeFiles(t, proj, map[string]string{"requirements.txt": "--no-index\n./" + wheel + "\n"})

	installedFirst := func(out string) {
		t.Helper()
		install := strings.Index(out, "Installing user requirements from requirements.txt")
		hello := strings.Index(out, "hello from the local wheel")
		require.True(t, install >= 0 && hello > install, "installed before the command ran:\n%s", out)
		require.NotContains(t, out, "Using cached environment")
	}
	first := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, first.Code, first.String())
	installedFirst(first.Stdout)
	require.NotContains(t, first.Stdout, "No user requirements found.")

	second := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, second.Code, second.String())
	require.Contains(t, second.Stdout, "Using cached environment")
	require.NotContains(t, second.Stdout, "Installing user requirements")
	require.NotContains(t, second.Stdout, "Successfully installed")
	require.Contains(t, second.Stdout, "hello from the local wheel")
	id := jobID(t, second.Stderr)
	require.Contains(t, s.logs(t, id), "Using cached environment")
	require.EqualValues(t, 1, s.job(t, id).Metric("installed"), "the SDK works inside the requirements environment")

	// Another image (not just another name for the same one) gets its own environment.
	ctxDir := t.TempDir()
	other := uniqueName("reqs") + ":latest"
	writeFiles(t, ctxDir, map[string]string{"Dockerfile": "FROM " + workerImage + "\nLABEL atlas.e2e.image=" + other + "\n"})
	buildImage(t, ctxDir, other)
	writeFiles(t, proj, map[string]string{"job.config.yaml": "worker:\n  image: " + other + "\n"})
	a := s.submitNoStream(t, proj, "main.py")
	b := s.submitNoStream(t, proj, "main.py")
	installs := 0
	for _, id := range []string{a, b} {
		j := s.waitDone(t, id)
		out := s.logs(t, id)
		require.Equal(t, "completed", j.State, "reason: %s\nlogs:\n%s", j.Reason, out)
		require.Contains(t, out, "hello from the local wheel")
		if strings.Contains(out, "Installing user requirements") {
			installs++
			installedFirst(out)
		} else {
			require.Contains(t, out, "Using cached environment")
		}
	}
	require.Equal(t, 1, installs, "the new image's environment is installed exactly once")
}

// The seed's custom worker: a Dockerfile FROM the worker image that pip-installs a
// requirements.txt (naming a local wheel) and sets ENTRYPOINT ["python"], built with
// `docker build` without a registry, and named by worker.image: the job runs with the package
// preinstalled and nothing to install.
func TestDockerCustomWorkerImage(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	ctxDir := t.TempDir()
	wheel := buildWheel(t, ctxDir, "atlas-e2e-custom", "1.0", "atlas_e2e_custom",
		"def where():\n    return 'preinstalled in the custom worker'\n")
	writeFiles(t, ctxDir, map[string]string{
		"requirements.txt": "--no-index\n/tmp/" + wheel + "\n",
		// The seed's Dockerfile, plus one COPY for the local wheel.
		"Dockerfile": `FROM atlas-ce/worker:latest

COPY ./requirements.txt /tmp/requirements.txt
COPY ./` + wheel + ` /tmp/` + wheel + `

RUN pip install --requirement /tmp/requirements.txt
RUN rm /tmp/requirements.txt

ENTRYPOINT ["python"]
`,
	})
	image := uniqueName("custom") + ":latest"
	buildImage(t, ctxDir, image)

	proj := newProject(t, "custom", map[string]string{
		"job.config.yaml": "worker:\n  image: " + image + "\n",
		"main.py":         "import sys, atlas_e2e_custom, foundations\nprint(atlas_e2e_custom.where(), sys.argv[1:])\nfoundations.log_metric('custom', 1)\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py", "--flag")
	require.Equal(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	require.Contains(t, res.Stdout, "No user requirements found.")
	require.Contains(t, res.Stdout, "preinstalled in the custom worker ['--flag']")
	j := s.record(t, id)
	require.Equal(t, "completed", j.State)
	require.EqualValues(t, 1, j.Metric("custom"))
}

// `foundations stop job` on a running container job: SIGTERM, then (for a job that ignores
// it) a kill after the server's stop_grace; the jobs end stopped and their containers are
// removed.
func TestDockerStop(t *testing.T) {
	needDocker(t)
	t.Parallel()
	home := newHome(t)
	writeFiles(t, home, map[string]string{"config/server.config.yaml": "stop_grace: 2s\n"})
	s := startDockerServer(t, home, "--workers", "2")
	proj := newProject(t, "stop", map[string]string{
		"polite.py": gateScript,
		"stubborn.py": `import signal, time
def ignore(signum, frame):
    print("got SIGTERM, ignoring it", flush=True)
signal.signal(signal.SIGTERM, ignore)
print("stubborn job is running", flush=True)
deadline = time.monotonic() + 120
while time.monotonic() < deadline:
    time.sleep(0.05)
print("the stubborn job was never killed", flush=True)
`,
	})
	since := time.Now()
	polite := s.submitNoStream(t, proj, "polite.py", "gate")
	stubborn := s.submitNoStream(t, proj, "stubborn.py")
	s.waitLog(t, polite, "job is waiting for its gate")
	s.waitLog(t, stubborn, "stubborn job is running")
	require.Len(t, jobContainers(t, polite), 1)

	res := cli(t, s.Home, proj, "stop", "job", "scheduler", polite)
	require.Equal(t, 0, res.Code, res.String())
	res = cli(t, s.Home, proj, "stop", "scheduler", stubborn)
	require.Equal(t, 0, res.Code, res.String())

	for _, id := range []string{polite, stubborn} {
		j := s.waitDone(t, id)
		require.Equal(t, "stopped", j.State, "reason: %s\nlogs:\n%s", j.Reason, s.logs(t, id))
		waitContainerGone(t, id, since)
	}
	require.NotContains(t, s.logs(t, polite), "job passed its gate")
	stubbornLog := s.logs(t, stubborn)
	require.Contains(t, stubbornLog, "got SIGTERM, ignoring it", "the job got SIGTERM first")
	require.NotContains(t, stubbornLog, "never killed")
	// Both stopped jobs are archived like any finished job.
	require.NotEmpty(t, s.job(t, polite).ArchiveDigest)
}

// An image that does not exist (and cannot be pulled) fails its job with a one-line reason in
// the job's logs and record; a job running meanwhile and the next job are not affected.
func TestDockerMissingImage(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t), "--workers", "2")
	running := s.submitNoStream(t, newProject(t, "bystander", map[string]string{"main.py": gateScript}), "main.py", "gate")
	s.waitLog(t, running, "job is waiting for its gate")

	missing := uniqueName("missing") + ":latest"
	proj := newProject(t, "missing", map[string]string{
		"job.config.yaml": "worker:\n  image: " + missing + "\n",
		"main.py":         "print('must not run')\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.NotEqual(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	require.Contains(t, res.Stderr, "Job '"+id+"' has failed")
	j := s.record(t, id)
	require.Equal(t, "failed", j.State)
	require.Contains(t, j.Reason, missing)
	require.NotContains(t, j.Reason, "\n", "the reason is one line")
	lines := errorLines(s.logs(t, id))
	require.Len(t, lines, 1, "one error line in the job's log:\n%s", s.logs(t, id))
	require.Contains(t, lines[0], missing)
	require.NotContains(t, s.logs(t, id), "must not run")

	require.Equal(t, "running", s.job(t, running).State, "the running job is not affected")
	next := cli(t, s.Home, newProject(t, "next", map[string]string{"main.py": "print('the next job ran')\n"}), "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, next.Code, next.String())
	require.Contains(t, next.Stdout, "the next job ran")
	s.openWorkGate(t, running, "gate")
	require.Equal(t, "completed", s.waitDone(t, running).State)
}

// restartJob waits at gate1 and gate2 in its working directory, each time logging a metric
// and telling the test through a named pipe in a volume (the server is down then), then waits
// at gate3, logs a last metric and ends.
const restartJob = `import os, sys, time
import foundations

def wait(gate):
    deadline = time.monotonic() + 150
    while not os.path.exists(gate):
        if time.monotonic() > deadline:
            print("gate never opened", flush=True)
            sys.exit(3)
        time.sleep(0.02)

print("before the restarts", flush=True)
for phase in (1, 2):
    wait("gate%d" % phase)
    print("while the server is down", phase, flush=True)
    foundations.log_metric("phase", phase)
    with open("/progress/fifo%d" % phase, "w") as f:
        f.write("progressed\n")
wait("gate3")
foundations.log_metric("phase", 3)
for i in range(3):
    print("after the restarts", i, flush=True)
`

// Restart safety: atlas-server stopped with SIGTERM, then killed with SIGKILL, while a
// container job runs; the job goes on (and tracks metrics) while the server is down, each new
// server re-attaches to it, and it ends completed with all its output and metrics. A container
// labelled for a job the server does not know is removed at start, with a log line.
func TestDockerRestartReattaches(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	progress := t.TempDir()
	proj := newProject(t, "restart", map[string]string{
		"main.py":         restartJob,
		"job.config.yaml": fmt.Sprintf("worker:\n  volumes:\n    %s: {bind: /progress, mode: rw}\n", progress),
	})
	id := s.submitNoStream(t, proj, "main.py")
	s.waitLog(t, id, "before the restarts")

	downPhase := func(sig syscall.Signal, phase int) {
		t.Helper()
		require.NoError(t, s.cmd.Process.Signal(sig))
		_, err := s.WaitExit(30 * time.Second)
		require.NoError(t, err)
		require.Len(t, runningContainers(t, id), 1, "the container keeps running while the server is down")
		progressed := readFIFO(t, filepath.Join(progress, fmt.Sprintf("fifo%d", phase)))
		s.openWorkGate(t, id, fmt.Sprintf("gate%d", phase))
		select {
		case got := <-progressed:
			require.Equal(t, "progressed\n", got)
		case <-time.After(2 * time.Minute):
			t.Fatalf("the job did not go on while the server was down (after %v)", sig)
		}
	}

	downPhase(syscall.SIGTERM, 1)
	s = startDockerServer(t, s.Home, "--port", strconv.Itoa(s.Port))
	require.NoError(t, s.Stderr.WaitFor("re-attached to running job", time.Minute))
	require.Equal(t, "running", s.job(t, id).State)

	// A container of this home for a job the server does not know: an orphan.
	ghost := uniqueName("ghost")
	t.Cleanup(func() { _, _ = docker("rm", "-f", ghost) })
	ghostID := mustDocker(t, "run", "-d", "--name", ghost, "--label", "atlas.job=ghost",
		"--label", "atlas.home="+homeLabel(s.Home), workerImage, "sleep", "300")

	downPhase(syscall.SIGKILL, 2)
	s = startDockerServer(t, s.Home, "--port", strconv.Itoa(s.Port))
	require.NoError(t, s.Stderr.WaitFor("re-attached to running job", time.Minute))
	// The server logs (on stderr) before it says it listens (on stdout): wait for the line.
	require.NoError(t, s.Stderr.WaitFor("removed what a job this server no longer knows left behind", time.Minute))
	orphanLine := ""
	for _, l := range strings.Split(s.Stderr.String(), "\n") {
		if strings.Contains(l, "removed what a job this server no longer knows left behind") {
			orphanLine = l
		}
	}
	require.NotEmpty(t, orphanLine, "the orphan's removal is logged:\n%s", s.Stderr)
	require.Contains(t, orphanLine, ghostID[:12])
	require.Contains(t, orphanLine, "ghost")
	out, _ := docker("ps", "-aq", "--filter", "name=^"+ghost+"$")
	require.Empty(t, out, "the orphaned container was removed")
	require.Len(t, jobContainers(t, id), 1, "the job's own container was kept")

	s.openWorkGate(t, id, "gate3")
	j := s.waitDone(t, id)
	require.Equal(t, "completed", j.State, "reason: %s\nlogs:\n%s", j.Reason, s.logs(t, id))
	requireInOrder(t, s.logs(t, id), "No user requirements found.", "before the restarts",
		"while the server is down 1", "while the server is down 2",
		"after the restarts 0", "after the restarts 1", "after the restarts 2")
	require.NotEmpty(t, j.ArchiveDigest, "the re-attached job is archived when it ends")
	var phase struct {
		Points []struct {
			Value float64 `json:"value"`
		} `json:"points"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/jobs/"+id+"/metrics/phase", nil, &phase))
	var values []float64
	for _, p := range phase.Points {
		values = append(values, p.Value)
	}
	require.Equal(t, []float64{1, 2, 3}, values, "metrics logged while the server was down are kept, once each")
}

// A declared GPU pool (--gpus 0,1): a num_gpus: 1 job sees one id in NVIDIA_VISIBLE_DEVICES
// and CUDA_VISIBLE_DEVICES, and two such jobs at once get different ids.
func TestDockerGPUAssignment(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t), "--gpus", "0,1", "--workers", "2")
	proj := newProject(t, "gpus", map[string]string{
		"job.config.yaml": "num_gpus: 1\n",
		"main.py": "import os\nprint('NVIDIA=[%s] CUDA=[%s]' % (os.environ.get('NVIDIA_VISIBLE_DEVICES', 'unset'), " +
			"os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')), flush=True)\n" + gateScript,
	})
	re := regexp.MustCompile(`NVIDIA=\[([^\]]*)\] CUDA=\[([^\]]*)\]`)
	a := s.submitNoStream(t, proj, "main.py", "gate")
	b := s.submitNoStream(t, proj, "main.py", "gate")
	seen := map[string]string{}
	for _, id := range []string{a, b} {
		m := re.FindStringSubmatch(s.waitLog(t, id, "job is waiting for its gate"))
		require.NotNil(t, m)
		require.Contains(t, []string{"0", "1"}, m[1], "a 1-GPU job sees one id from the pool")
		require.Equal(t, m[1], m[2], "NVIDIA_VISIBLE_DEVICES and CUDA_VISIBLE_DEVICES agree")
		require.Equal(t, []string{m[1]}, s.job(t, id).GPUIDs)
		seen[id] = m[1]
	}
	require.NotEqual(t, seen[a], seen[b], "two jobs running at once get different GPUs")
	for _, id := range []string{a, b} {
		s.openWorkGate(t, id, "gate")
		require.Equal(t, "completed", s.waitDone(t, id).State)
	}
}

// A job running in a container submits another with foundations.submit(scheduler_config=
// "scheduler", ...): the child is queued (the only worker is busy with the parent), then
// runs in a container with its params.
func TestDockerNestedSubmit(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	proj := newProject(t, "nested", map[string]string{
		"parent.py": `import foundations
d = foundations.submit(scheduler_config="scheduler", command=["child.py", "--from-parent"], params={"depth": 7})
print("CHILD=" + d.job_name(), flush=True)
print("child is " + d.get_job_status(), flush=True)
`,
		"child.py": `import sys, foundations
params = foundations.load_parameters()
print("child got depth %s args %s" % (params["depth"], sys.argv[1:]), flush=True)
foundations.log_metric("child_metric", 1)
`,
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "parent.py")
	require.Equal(t, 0, res.Code, res.String())
	parent := jobID(t, res.Stderr)
	m := regexp.MustCompile(`CHILD=(\S+)`).FindStringSubmatch(res.Stdout)
	require.NotNil(t, m, res.String())
	child := m[1]
	require.Contains(t, res.Stdout, "child is queued")

	j := s.waitDone(t, child)
	require.Equal(t, "completed", j.State, "reason: %s\nlogs:\n%s", j.Reason, s.logs(t, child))
	require.Contains(t, s.logs(t, child), "child got depth 7 args ['--from-parent']")
	r := s.record(t, child)
	require.Equal(t, "docker", r.Executor)
	require.Equal(t, parent, r.ParentID)
	require.EqualValues(t, 7, r.Params["depth"])
	require.EqualValues(t, 1, r.Metric("child_metric"))
}

// An image's own environment (ENV in its Dockerfile, PYTHONPATH included) is kept: Atlas adds
// its SDK without hiding the image's packages, as it must for "any image with Python 3".
func TestDockerImageEnvironmentKept(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{
		"imagelib.py": "VALUE = 'from the image PYTHONPATH'\n",
		"Dockerfile": "FROM " + workerImage + "\nCOPY imagelib.py /opt/lib/imagelib.py\n" +
			"ENV PYTHONPATH=/opt/lib IMAGE_SETTING=kept\n",
	})
	image := uniqueName("imageenv") + ":latest"
	buildImage(t, ctxDir, image)
	proj := newProject(t, "imageenv", map[string]string{
		"job.config.yaml": "worker:\n  image: " + image + "\n",
		"main.py": `import os
print("IMAGE_SETTING=" + os.environ.get("IMAGE_SETTING", "unset"), flush=True)
import foundations
foundations.log_metric("sdk", 1)
import imagelib
print(imagelib.VALUE, flush=True)
`,
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Contains(t, res.Stdout, "IMAGE_SETTING=kept\n")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "from the image PYTHONPATH\n")
	require.EqualValues(t, 1, s.job(t, jobID(t, res.Stderr)).Metric("sdk"))
}

// PYTHONPATH in worker.environment adds to the job's import path; the injected SDK stays
// importable.
func TestDockerEnvironmentPythonPath(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	proj := newProject(t, "pypath", map[string]string{
		"job.config.yaml": "worker:\n  environment:\n    PYTHONPATH: /job/job_source/lib\n",
		"lib/mylib.py":    "VALUE = 'from lib on PYTHONPATH'\n",
		"main.py":         "import mylib\nprint(mylib.VALUE, flush=True)\nimport foundations\nfoundations.log_metric('sdk', 1)\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Contains(t, res.Stdout, "from lib on PYTHONPATH\n")
	require.Equal(t, 0, res.Code, res.String())
	require.EqualValues(t, 1, s.job(t, jobID(t, res.Stderr)).Metric("sdk"))
}

// An image without Python 3 fails its job with a one-line reason that says so.
func TestDockerImageWithoutPython(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	ctxDir := t.TempDir()
	writeFiles(t, ctxDir, map[string]string{"hello.txt": "no python here\n", "Dockerfile": "FROM scratch\nCOPY hello.txt /hello.txt\n"})
	image := uniqueName("nopython") + ":latest"
	buildImage(t, ctxDir, image)
	proj := newProject(t, "nopython", map[string]string{
		"job.config.yaml": "worker:\n  image: " + image + "\n",
		"main.py":         "print('must not run')\n",
	})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.NotEqual(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	j := s.record(t, id)
	require.Equal(t, "failed", j.State)
	require.NotContains(t, j.Reason, "\n")
	require.NotContains(t, s.logs(t, id), "must not run")
	require.Contains(t, s.logs(t, id), "python3", "the log names what is missing")
	require.Contains(t, j.Reason, image)
}

// While the server is down, one container job ends (exit code 3, after tracking values it
// cannot deliver) and another's container is removed by hand; at start the server records the
// first as failed with its exit code, output, archive and the values it left in its spool, the
// second as failed with the reason, and a third it re-attached to can still be stopped.
func TestDockerJobsChangeWhileServerDown(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t), "--workers", "3")
	endsProj := newProject(t, "ends", map[string]string{
		"job.config.yaml": "worker:\n  environment:\n    FOUNDATIONS_FLUSH_TIMEOUT: '0.5'\n",
		"main.py": `import os, sys, time
import foundations
foundations.log_metric("loss", 1.0)
foundations.flush()
print("first value delivered", flush=True)
deadline = time.monotonic() + 120
while not os.path.exists("gate") and time.monotonic() < deadline:
    time.sleep(0.02)
for v in (0.5, 0.25):
    foundations.log_metric("loss", v)
foundations.log_param("late", "yes")
print("exiting with 3 while the server is down", flush=True)
sys.exit(3)
`,
	})
	gateProj := newProject(t, "gated", map[string]string{"main.py": gateScript})
	since := time.Now()
	ended := s.submitNoStream(t, endsProj, "main.py")
	removed := s.submitNoStream(t, gateProj, "main.py", "gate")
	stopped := s.submitNoStream(t, gateProj, "main.py", "gate")
	s.waitLog(t, ended, "first value delivered")
	s.waitLog(t, removed, "job is waiting for its gate")
	s.waitLog(t, stopped, "job is waiting for its gate")
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	_, err := s.WaitExit(30 * time.Second)
	require.NoError(t, err)

	endedContainer, removedContainer := jobContainers(t, ended), jobContainers(t, removed)
	require.Len(t, endedContainer, 1)
	require.Len(t, removedContainer, 1)
	s.openWorkGate(t, ended, "gate")
	require.Equal(t, "3", mustDocker(t, "wait", endedContainer[0]), "the job ended while the server was down")
	mustDocker(t, "rm", "-f", removedContainer[0])

	s = startDockerServer(t, s.Home, "--port", strconv.Itoa(s.Port))
	j := s.waitDone(t, ended)
	require.Equal(t, "failed", j.State)
	require.NotNil(t, j.ExitCode)
	require.Equal(t, 3, *j.ExitCode)
	require.NotEmpty(t, j.ArchiveDigest)
	requireInOrder(t, s.logs(t, ended), "first value delivered", "exiting with 3 while the server is down")
	var loss struct {
		Points []struct {
			Value float64 `json:"value"`
		} `json:"points"`
	}
	require.Equal(t, http.StatusOK, s.api(t, http.MethodGet, "/api/v1/jobs/"+ended+"/metrics/loss", nil, &loss))
	var values []float64
	for _, p := range loss.Points {
		values = append(values, p.Value)
	}
	require.Equal(t, []float64{1, 0.5, 0.25}, values, "the values left in the container job's spool are stored, once")
	require.Equal(t, "yes", j.Params["late"])
	waitContainerGone(t, ended, since)

	j = s.waitDone(t, removed)
	require.Equal(t, "failed", j.State)
	require.Contains(t, j.Reason, "no longer exists")
	require.Contains(t, s.logs(t, removed), "Foundations ERROR: ")

	require.Equal(t, "running", s.job(t, stopped).State)
	res := cli(t, s.Home, gateProj, "stop", "job", "scheduler", stopped)
	require.Equal(t, 0, res.Code, res.String())
	require.Equal(t, "stopped", s.waitDone(t, stopped).State)
	waitContainerGone(t, stopped, since)
	require.NoDirExists(t, s.workDir(removed), "the lost job's working directory is not left behind")
}

// A relative FOUNDATIONS_HOME works with the Docker executor as with the process executor.
func TestDockerRelativeHome(t *testing.T) {
	needDocker(t)
	t.Parallel()
	parent := t.TempDir()
	home := filepath.Join(parent, "fh")
	t.Cleanup(func() { removeHomeContainers("fh") })
	startServerEnv(t, home, parent, []string{"FOUNDATIONS_HOME=fh"}, "--executor", "docker")
	res := cli(t, home, newProject(t, "rel", map[string]string{"main.py": "print('ran with a relative home')\n"}), "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "ran with a relative home")
}

// `atlas-server start` says which executor it chose and why: --executor auto takes Docker when
// an engine answers (naming it and the default image, which --worker-image sets), and local
// processes when none does; --executor docker without an engine is a one-line error.
func TestDockerExecutorChoice(t *testing.T) {
	needDocker(t)
	t.Parallel()
	image := tagWorkerImage(t, "default")
	s := startServerEnv(t, newHome(t), t.TempDir(), nil, "--executor", "auto", "--worker-image", image)
	require.Regexp(t, `executor: docker \(a Docker engine is reachable; Docker \S+ at \S+, worker image `+regexp.QuoteMeta(image)+`\)`,
		s.Stdout.String())
	since := time.Now()
	res := cli(t, s.Home, newProject(t, "auto", map[string]string{"main.py": "print('auto chose docker')\n"}), "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	id := jobID(t, res.Stderr)
	require.Equal(t, "docker", s.record(t, id).Executor)
	require.Equal(t, []string{image}, containerEvents(t, id, since, "create", `{{index .Actor.Attributes "image"}}`),
		"--worker-image is the default image of jobs")

	missing := uniqueName("missingdefault") + ":latest"
	s = startServerEnv(t, newHome(t), t.TempDir(), nil, "--executor", "docker", "--worker-image", missing)
	require.Contains(t, s.Stdout.String(), "worker image "+missing+" (not found: build it with `make worker-image`)")

	noEngine := []string{"DOCKER_HOST=unix://" + filepath.Join(t.TempDir(), "no-engine.sock")}
	s = startServerEnv(t, newHome(t), t.TempDir(), noEngine, "--executor", "auto")
	require.Regexp(t, `executor: process \(jobs run as local processes: no Docker engine reachable at \S+no-engine\.sock`, s.Stdout.String())

	home := newHome(t)
	res = runIn(t, home, home, noEngine, serverBin(), "start", "--port", "0", "--executor", "docker")
	requireOneLineError(t, res, "--executor docker", "no-engine.sock")
	require.NotContains(t, res.Stdout, "listening on")
}

// A worker.volumes host directory that does not exist yet is created for the submitter: the
// job (running as the submitter) can write into it, and no root-owned directory is left.
func TestDockerNewVolumeDirOwnedBySubmitter(t *testing.T) {
	needDocker(t)
	if os.Getuid() != 0 {
		t.Skip("needs root to submit as another user")
	}
	t.Parallel()
	uid, gid := 1000, 1000
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	s, base := startSharedHomeServer(t)
	shareBinaries(t)
	userHome := filepath.Join(base, "user")
	vol := filepath.Join(userHome, "new", "volume")
	proj := filepath.Join(userHome, "proj")
	writeFiles(t, proj, map[string]string{
		"job.config.yaml": fmt.Sprintf("worker:\n  volumes:\n    %s: {bind: /data/out, mode: rw}\n", vol),
		"main.py":         "with open('/data/out/result.txt', 'w') as f:\n    f.write('ok\\n')\nprint('wrote the volume')\n",
	})
	chownTree(t, userHome, uid, gid)
	res := runAs(t, cred, s.Home, proj, []string{"HOME=" + userHome}, cliBin(), "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	for _, p := range []string{filepath.Join(userHome, "new"), vol, filepath.Join(vol, "result.txt")} {
		u, g := fileOwner(t, p)
		require.Equal(t, [2]int{uid, gid}, [2]int{u, g}, "%s belongs to the submitter", p)
	}
}

// A job's token (FOUNDATIONS_TOKEN, given to its container) writes to that job only: a job
// cannot track values into another job through the server's socket.
func TestDockerJobTokenWritesOwnJobOnly(t *testing.T) {
	needDocker(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t), "--workers", "2")
	victim := s.submitNoStream(t, newProject(t, "victim", map[string]string{"main.py": gateScript}), "main.py", "gate")
	s.waitLog(t, victim, "job is waiting for its gate")
	proj := newProject(t, "intruder", map[string]string{"main.py": `import os, sys
from foundations import _client
cl = _client.Client(os.environ["FOUNDATIONS_SCHEDULER_URL"], os.environ["FOUNDATIONS_TOKEN"])
try:
    cl.request("POST", "/api/v1/jobs/%s/track" % sys.argv[1], body={"writer": "", "seq": 0,
               "metrics": {"intruded": {"values": [1]}}})
    print("WRITE ACCEPTED", flush=True)
except _client.APIError as e:
    print("WRITE REFUSED %d" % e.status, flush=True)
`})
	res := cli(t, s.Home, proj, "submit", "scheduler", ".", "main.py", victim)
	require.Equal(t, 0, res.Code, res.String())
	s.openWorkGate(t, victim, "gate")
	require.Equal(t, "completed", s.waitDone(t, victim).State)
	require.Regexp(t, `WRITE REFUSED 40[13]`, res.Stdout)
	require.Nil(t, s.job(t, victim).Metric("intruded"))
}

// `atlas-server start -g` finds GPUs with nvidia-smi (a stand-in here, first on PATH),
// honouring CUDA_VISIBLE_DEVICES, and runs as many workers as GPUs; jobs that need no GPU run.
func TestDockerGPUDiscovery(t *testing.T) {
	needDocker(t)
	t.Parallel()
	bin := t.TempDir()
	writeFiles(t, bin, map[string]string{"nvidia-smi": "#!/bin/sh\nprintf '0\\n1\\n2\\n'\n"})
	require.NoError(t, os.Chmod(filepath.Join(bin, "nvidia-smi"), 0o755))
	path := "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH")

	s := startServerEnv(t, newHome(t), t.TempDir(), []string{path}, "--executor", "docker", "-g")
	require.Contains(t, s.Stdout.String(), "workers:  3, GPUs: 0,1,2")
	res := cli(t, s.Home, newProject(t, "nogpu", map[string]string{"main.py": "print('no GPU needed')\n"}), "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, res.Code, res.String())
	require.Contains(t, res.Stdout, "no GPU needed")

	s = startServerEnv(t, newHome(t), t.TempDir(), []string{path, "CUDA_VISIBLE_DEVICES=2,0"}, "--executor", "docker", "-g")
	require.Contains(t, s.Stdout.String(), "workers:  2, GPUs: 0,2")
}
