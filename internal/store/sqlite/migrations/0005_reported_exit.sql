-- How a job's command ended, as the job's own in-job side reported it over the API (jobs that
-- run where the server cannot watch their process: a Kubernetes pod, a Slurm node).
ALTER TABLE jobs ADD COLUMN reported_exit_code INTEGER;
