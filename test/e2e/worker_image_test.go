package e2e

// End-to-end tests of what the worker images hold.

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

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
