package e2e

// End-to-end tests of what the worker images hold: a job uses the default worker's ML stack,
// the example project in examples/ trains a model with it, its search driver queues jobs that
// all run there, and PyTorch imports in the torch worker.

import (
	"bytes"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// needWorkerImage skips the test unless the worker image of a variant (latest or torch) is
// built from the current recipe (`scripts/worker-image.sh --check`), saying why; with CI=true
// it fails instead, since CI's setup builds both. It returns the image's name.
func needWorkerImage(t *testing.T, variant string) string {
	t.Helper()
	needDocker(t)
	out, err := exec.Command(filepath.Join(repoRoot, "scripts", "worker-image.sh"), "--check", variant).CombinedOutput()
	if err != nil {
		reason := firstLineOf(string(out), err)
		if os.Getenv("CI") == "true" {
			t.Fatalf("the worker image cannot be used: %s (CI=true, so this is a failure)", reason)
		}
		t.Skip("worker image tests skipped: " + reason)
	}
	return "atlas-ce/worker:" + variant
}

// exampleProject copies an example project from examples/ into a fresh folder.
func exampleProject(t *testing.T, name string) string {
	t.Helper()
	src := filepath.Join(repoRoot, "examples", name)
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	files := map[string]string{}
	for _, e := range entries {
		require.False(t, e.IsDir(), "examples/%s/%s: the copy takes files only", name, e.Name())
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		files[e.Name()] = string(data)
	}
	return newProject(t, name, files)
}

// metricCount returns how many points of a metric a job logged.
func metricCount(j *Job, key string) int {
	for _, m := range j.Metrics {
		if m.Key == key {
			return m.Count
		}
	}
	return 0
}

var epochRE = regexp.MustCompile(`(?m)^epoch (\d+)/20: train loss \d+\.\d{4}, val loss \d+\.\d{4}, val accuracy [01]\.\d{4}$`)

// The digits example, submitted as a new user would, runs to completion in the default
// worker: scikit-learn trains epoch by epoch, every epoch's metrics are recorded, and the
// confusion matrix Matplotlib drew is saved as a PNG artifact.
func TestDockerDigitsExample(t *testing.T) {
	image := needWorkerImage(t, "latest")
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	proj := exampleProject(t, "digits")

	since := time.Now()
	out, code := cliCombined(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, code, out)
	id := jobID(t, out)
	var epochs []string
	for _, m := range epochRE.FindAllStringSubmatch(out, -1) {
		epochs = append(epochs, m[1])
	}
	require.Equal(t, strings.Fields("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20"), epochs,
		"the job printed every epoch's metrics, streamed:\n%s", out)
	require.Contains(t, out, "Foundations INFO: Job '"+id+"' has completed.")

	j := s.record(t, id)
	require.Equal(t, "completed", j.State)
	require.Equal(t, "docker", j.Executor)
	require.Equal(t, []string{image}, containerEvents(t, id, since, "create", `{{index .Actor.Attributes "image"}}`),
		"the job ran in the default worker image")
	require.Equal(t, "digits", j.Project, "job.config.yaml names the project")
	require.EqualValues(t, 64, j.Params["hidden_layer_size"], "the defaults are logged as params")
	require.EqualValues(t, 20, j.Params["epochs"])
	for _, key := range []string{"train_loss", "val_loss", "val_accuracy"} {
		require.Equal(t, 20, metricCount(&j.Job, key), "%s is logged once per epoch", key)
	}
	require.Greater(t, j.Metric("val_accuracy"), 0.9, "the model learned to read digits")
	require.Less(t, j.Metric("val_loss"), 0.5)
	require.Equal(t, "mlp", j.Tags["model"])

	require.Len(t, j.Artifacts, 1)
	require.Equal(t, "confusion_matrix", j.Artifacts[0].Key)
	require.Equal(t, "confusion_matrix.png", j.Artifacts[0].Filename)
	cfg, err := png.DecodeConfig(bytes.NewReader(s.artifact(t, id, "confusion_matrix")))
	require.NoError(t, err, "the artifact is a PNG image")
	require.Greater(t, cfg.Width, 100)
	require.Greater(t, cfg.Height, 100)
}

var (
	queuedRE = regexp.MustCompile(`(?m)^queued ([0-9a-f-]+): `)
	resultRE = regexp.MustCompile(`(?m)^val_accuracy [01]\.\d{4}  [0-9a-f-]+  `)
)

// The example's search driver, run on the user's machine (which needs only the SDK), queues
// one job per point of its grid; with one worker they run one after another, each with its
// own params, and the driver reports every job's accuracy once all completed.
func TestDockerDigitsSearch(t *testing.T) {
	needWorkerImage(t, "latest")
	requirePython(t)
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	proj := exampleProject(t, "digits")

	res := python(t, s.Home, t.TempDir(), nil, filepath.Join(proj, "search.py"))
	require.Equal(t, 0, res.Code, res.String())
	var ids []string
	for _, m := range queuedRE.FindAllStringSubmatch(res.Stdout, -1) {
		ids = append(ids, m[1])
	}
	require.Len(t, ids, 4, res.String())
	require.Len(t, resultRE.FindAllString(res.Stdout, -1), 4, "the driver reports each job's accuracy:\n%s", res.Stdout)

	jobs := s.jobs(t, "")
	require.Len(t, jobs, 4, "the driver is not a job")
	type point struct {
		hidden float64
		lr     float64
	}
	seen := map[point]bool{}
	var prev *Job
	for i, j := range jobs {
		require.Equal(t, ids[i], j.ID, "jobs are listed in the order the driver queued them")
		require.Equal(t, "completed", j.State, s.logs(t, j.ID))
		require.Equal(t, "digits", j.Project)
		hidden, lr := j.SubmittedParams["hidden_layer_size"].(float64), j.SubmittedParams["learning_rate"].(float64)
		seen[point{hidden, lr}] = true
		require.Equal(t, hidden, j.Params["hidden_layer_size"], "the job trained with its own params")
		require.Equal(t, lr, j.Params["learning_rate"])
		require.EqualValues(t, 15, j.Params["epochs"])
		require.Equal(t, 15, metricCount(&jobs[i], "val_accuracy"))
		require.Contains(t, s.logs(t, j.ID), "epoch 15/15: ")
		if prev != nil {
			require.False(t, j.StartedAt.Before(*prev.FinishedAt), "one worker: job %d started after job %d ended", i, i-1)
		}
		prev = &jobs[i]
	}
	require.Len(t, seen, 4, "each job has its own point of the grid")
}

// A job in the default worker uses the common ML stack without a requirements.txt: every
// package the image promises imports and works, run as the submitting user would run it.
func TestDockerWorkerStack(t *testing.T) {
	needWorkerImage(t, "latest")
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	proj := newProject(t, "stack", map[string]string{"main.py": `import io

import foundations
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.optimize
import sklearn.linear_model
import tqdm
import xgboost
import yaml
from PIL import Image

x = np.arange(20.0).reshape(-1, 1)
y = 3 * x.ravel() + 1
df = pd.DataFrame({"x": x.ravel(), "y": y})
slope = sklearn.linear_model.LinearRegression().fit(df[["x"]], df["y"]).coef_[0]
root = scipy.optimize.brentq(lambda v: v * v - 2, 0, 2)
booster = xgboost.XGBRegressor(n_estimators=20, max_depth=2).fit(x, y)
steps = sum(1 for _ in tqdm.tqdm(range(5), disable=True))
config = yaml.safe_load("epochs: 3")
fig, ax = plt.subplots()
ax.plot(df["x"], df["y"])
buf = io.BytesIO()
fig.savefig(buf, format="png")
buf.seek(0)
width = Image.open(buf).size[0]
print("backend", plt.get_backend())
foundations.log_metric("slope", round(float(slope), 6))
foundations.log_metric("root", round(root, 6))
foundations.log_metric("xgb_error", float(abs(booster.predict(x[:1])[0] - y[0])))
foundations.log_metric("steps", steps + config["epochs"])
foundations.log_metric("png_width", width)
`})
	out, code := cliCombined(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "backend agg", "Matplotlib draws without a display")
	require.NotContains(t, out, "Matplotlib created a temporary", "Matplotlib's cache directory is usable")
	j := s.job(t, jobID(t, out))
	require.Equal(t, "completed", j.State)
	require.EqualValues(t, 3, j.Metric("slope"))
	require.EqualValues(t, 1.414214, j.Metric("root"))
	require.Less(t, j.Metric("xgb_error"), 5.0)
	require.EqualValues(t, 8, j.Metric("steps"))
	require.Greater(t, j.Metric("png_width"), 100.0)
}

// PyTorch (Debian's, CPU only) imports and computes in the torch worker image.
func TestDockerTorchImage(t *testing.T) {
	image := needWorkerImage(t, "torch")
	t.Parallel()
	s := startDockerServer(t, newHome(t))
	proj := newProject(t, "torch", map[string]string{
		"job.config.yaml": "worker:\n  image: " + image + "\n",
		"main.py": `import foundations
import torch

torch.manual_seed(0)
x = torch.ones(3, 4)
w = torch.full((4, 2), 0.5, requires_grad=True)
loss = (x @ w).sum()
loss.backward()
print("torch", torch.__version__, "cuda", torch.cuda.is_available())
foundations.log_metric("loss", loss.item())
foundations.log_metric("grad_sum", w.grad.sum().item())
`,
	})
	out, code := cliCombined(t, s.Home, proj, "submit", "scheduler", ".", "main.py")
	require.Equal(t, 0, code, out)
	require.Regexp(t, `torch \d+\.\d+\S* cuda False`, out, "Debian's PyTorch is built for the CPU")
	j := s.job(t, jobID(t, out))
	require.Equal(t, "completed", j.State)
	require.EqualValues(t, 12, j.Metric("loss"))
	require.EqualValues(t, 24, j.Metric("grad_sum"))
}
