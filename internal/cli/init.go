package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/atlasgo/atlas/internal/config"
)

const templateReadme = `This project was created by ` + "`foundations init`" + `.

  job.config.yaml   how the job runs: project name, GPUs, memory, worker image, volumes,
                    environment variables. Every key is listed there, commented out.
  main.py           a sample script: it logs parameters and metrics and saves an artifact,
                    so there is something to look at in the Atlas GUI.
  data/             data small enough to ship with every job. Mount large data into the
                    worker with worker.volumes in job.config.yaml instead: everything in this
                    folder is bundled and archived with each job.

Run it on the scheduler and stream its logs:

    foundations submit scheduler . main.py

or run it here, still tracked by Atlas:

    python main.py

Then open http://localhost:5555 to see the job.
`

const templateMain = `"""A sample Atlas job.

It reads the parameters it was submitted with (none when run directly), logs a few parameters
and metrics, and saves an artifact, so that there is something to see in the Atlas GUI.
"""
import foundations

params = foundations.load_parameters()

depth = params.get("depth", 3)
epochs = params.get("epochs", 5)
batch_size = params.get("batch_size", 256)
learning_rate = params.get("learning_rate", 1e-3)

foundations.log_param("depth", depth)
foundations.log_params({"epochs": epochs, "batch_size": batch_size, "learning_rate": learning_rate})

loss = 1.0
for epoch in range(epochs):
    loss *= 0.7
    foundations.log_metric("loss", loss)
    print(f"epoch {epoch + 1}/{epochs}: loss {loss:.4f}")

foundations.log_metric("accuracy", 0.9)
foundations.set_tag("sample")
foundations.save_artifact("README.txt", "Project_README")
`

const templateJobConfig = `# Job configuration: how Atlas runs this project's jobs.
# Every supported key is listed below; uncomment what you need.
# Command-line flags of ` + "`foundations submit`" + ` win over this file.

# Project config #
# project_name: 'my-atlas-project'   # default: the job folder's name
log_level: INFO                      # DEBUG, INFO, WARNING, ERROR

# Worker config #
# num_gpus: 0        # GPUs the job needs; it waits until that many are free
# ram: 4             # memory limit in GB (Docker workers)
# priority: 0        # higher runs first; equal priorities run in submit order

# params:            # written to foundations_job_parameters.json, read by foundations.load_parameters()
#   learning_rate: 0.001
#   epochs: 10

# worker:
#   image: atlas-ce/worker:latest    # any image with Python 3 (Docker workers)
#   entrypoint: python               # what runs the command; default: python
#   command: main.py                 # used when ` + "`foundations submit`" + ` gives no command
#   volumes:
#     /my/local/path:
#       bind: /my/container/path
#       mode: rw                     # rw or ro
#   environment:
#     MY_ENV_VAR: MY_VALUE
`

func initCommand(e *console) *cobra.Command {
	return &cobra.Command{
		Use:   "init <project_name>",
		Short: "Create a project folder with a sample job",
		Example: `  foundations init my_project
  cd my_project && foundations submit scheduler . main.py`,
		Args: positional("<project_name>"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if err := config.ValidateProjectName(filepath.Base(name)); err != nil || name == "." || name == ".." {
				return fmt.Errorf("invalid project name %q", name)
			}
			if _, err := os.Stat(name); err == nil {
				return fmt.Errorf("project directory `%s` already exists", name)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			files := map[string]string{
				"README.txt":      templateReadme,
				"main.py":         templateMain,
				"job.config.yaml": templateJobConfig,
				"data/.keep":      "",
			}
			for rel, content := range files {
				p := filepath.Join(name, rel)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					return err
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stdout, "Success: New Foundations project `%s` created!\n", name)
			return nil
		},
	}
}
