-- Jobs by state and submit time, so that how long the oldest queued job has waited is one
-- index lookup rather than a read of the whole queue. It replaces jobs(state, priority, seq),
-- whose every use jobs_queue (0012) serves, so that a job's state change updates no more
-- indexes than before.
DROP INDEX jobs_state;
CREATE INDEX jobs_state_created ON jobs(state, created_at);
