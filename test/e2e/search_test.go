package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The seed's random search driver, as written there (with its missing comma added and the
// environment value as a string, which Python requires).
const searchDriver = `import os
os.environ["FOUNDATIONS_COMMAND_LINE"] = "True" # Required so that an extra job is not created when launching the hyperparameter search

import json
import random

import foundations

random.seed(7)

def some_random_parameter_generator(ranges):
    params = {}
    for key, value in ranges.items():
        if isinstance(value, dict) and "count_min" in value:
            count = random.randint(value["count_min"], value["count_max"])
            params[key] = [random.randint(value["min"], value["max"]) for _ in range(count)]
        elif isinstance(value, dict):
            params[key] = random.randint(value["min"], value["max"])
        elif isinstance(value, list):
            params[key] = random.choice(value)
        else:
            params[key] = value
    return params

param_ranges = {
    "epochs": {
        "min": 5,
        "max": 40,
    },
    "layer_shapes": {
        "min": 256,
        "max": 768,
        "count_min": 1,
        "count_max": 3
    },
    "early_stopping_tolerance": 0.01,
    "batch_size": [64, 128, 1024]
}

for _ in range(5):
    params = some_random_parameter_generator(param_ranges)
    job = foundations.submit(scheduler_config="scheduler", command=["main.py"], params=params)
    print("SUBMITTED", job.job_name(), json.dumps(params, sort_keys=True))
`

// A driver that does not set FOUNDATIONS_COMMAND_LINE: it must not become a job either.
const plainDriver = `import json
import foundations

params = {"epochs": 1, "batch_size": 8, "layer_shapes": [4], "early_stopping_tolerance": 0.5}
job = foundations.submit(scheduler_config="scheduler", command=["main.py"], params=params)
print("SUBMITTED", job.job_name(), json.dumps(params, sort_keys=True))
`

// searchMain records when each job starts and ends in a shared file, waits at a gate, and
// prints and logs what load_parameters() returned.
const searchMain = `import json, os, sys, time
import foundations

ORDER = %q
GATE = %q

params = foundations.load_parameters()
job = os.environ["FOUNDATIONS_JOB_ID"]
with open(ORDER, "a") as f:
    f.write("start " + job + "\n")
print("PARAMS=" + json.dumps(params, sort_keys=True), flush=True)
deadline = time.monotonic() + 120
while not os.path.exists(GATE):
    if time.monotonic() > deadline:
        sys.exit(3)
    time.sleep(0.02)
foundations.log_metric("score", params["epochs"] * 2)
with open(ORDER, "a") as f:
    f.write("end " + job + "\n")
`

type submitted struct {
	id     string
	params string // JSON with sorted keys
}

func parseSubmitted(t *testing.T, out string) []submitted {
	t.Helper()
	var subs []submitted
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "SUBMITTED "); ok {
			id, params, _ := strings.Cut(rest, " ")
			subs = append(subs, submitted{id: id, params: params})
		}
	}
	return subs
}

// The seed's hyperparameter search: a driver script queues jobs with foundations.submit();
// each job gets its own params through load_parameters(); the driver is never a job; with the
// default single worker the jobs run one after another, in submission order.
func TestHyperparameterSearch(t *testing.T) {
	requirePython(t)
	t.Parallel()
	s := startServer(t, newHome(t))
	order := filepath.Join(t.TempDir(), "order.txt")
	gate := gatePath(t)
	proj := newProject(t, "search", map[string]string{
		"main.py":   fmt.Sprintf(searchMain, order, gate),
		"driver.py": searchDriver,
	})

	res := python(t, s.Home, proj, nil, "driver.py")
	require.Equal(t, 0, res.Code, res.String())
	subs := parseSubmitted(t, res.Stdout)
	require.Len(t, subs, 5, res.String())

	// Only the five jobs exist: the driver did not record itself.
	jobs := s.jobs(t, "")
	require.Len(t, jobs, 5, "the driver script must not appear as a job")
	for i, j := range jobs {
		require.Equal(t, subs[i].id, j.ID, "jobs are listed in submission order")
		require.Equal(t, "scheduled", j.Mode)
		require.Equal(t, "search", j.Project)
		require.Equal(t, []string{"main.py"}, j.Command)
	}

	// One worker: the first job runs (held at its gate) while the others wait in order.
	s.waitRunning(t, subs[0].id)
	queued, running := s.queue(t)
	require.Equal(t, []string{subs[0].id}, running)
	require.Equal(t, []string{subs[1].id, subs[2].id, subs[3].id, subs[4].id}, queued)
	for _, sub := range subs[1:] {
		require.Equal(t, "queued", s.job(t, sub.id).State)
	}

	openGate(t, gate)
	for _, sub := range subs {
		j := s.waitDone(t, sub.id)
		require.Equal(t, "completed", j.State, s.logs(t, sub.id))
		require.Contains(t, s.logs(t, sub.id), "PARAMS="+sub.params+"\n", "load_parameters() returns the job's own params")
		var want map[string]any
		require.NoError(t, json.Unmarshal([]byte(sub.params), &want))
		require.Equal(t, want, j.SubmittedParams)
		// load_parameters() logged them as the job's params (lists flattened).
		require.Equal(t, want["epochs"], j.Params["epochs"])
		require.Equal(t, want["batch_size"], j.Params["batch_size"])
		require.Equal(t, want["layer_shapes"].([]any)[0], j.Params["layer_shapes_0"])
		require.Equal(t, want["epochs"].(float64)*2, j.Metric("score"))
	}

	// One after another: each job ended before the next one started.
	data, err := os.ReadFile(order)
	require.NoError(t, err)
	var wantOrder []string
	for _, sub := range subs {
		wantOrder = append(wantOrder, "start "+sub.id, "end "+sub.id)
	}
	require.Equal(t, wantOrder, strings.Split(strings.TrimSpace(string(data)), "\n"))

	// A driver that does not set FOUNDATIONS_COMMAND_LINE is not recorded either.
	res = python(t, s.Home, proj, nil, "driver.py")
	require.Equal(t, 0, res.Code, res.String())
	writeFiles(t, proj, map[string]string{"plain_driver.py": plainDriver})
	res = python(t, s.Home, proj, nil, "plain_driver.py")
	require.Equal(t, 0, res.Code, res.String())
	plain := parseSubmitted(t, res.Stdout)
	require.Len(t, plain, 1)
	all := s.jobs(t, "")
	require.Len(t, all, 11, "only submitted jobs exist, never their drivers")
	for _, j := range all {
		require.Equal(t, "scheduled", j.Mode, "job %s", j.ID)
	}
	require.Equal(t, "completed", s.waitDone(t, plain[0].id).State)
}
