-- The queue in its order (priority first, then submit order), so that the scheduler reads its
-- head without sorting every queued job.
CREATE INDEX jobs_queue ON jobs(state, priority DESC, seq);
