-- Hyperparameter searches: each trial is an ordinary job that names its search and its number
-- in it; a search keeps its parsed config, the job its trials are copies of, how many trials it
-- submitted, and every decision it made at a rung, so that after a restart it goes on where it
-- was without deciding anything twice.
ALTER TABLE jobs ADD COLUMN search_id TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN search_trial INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_search ON jobs(search_id, search_trial) WHERE search_id != '';

CREATE TABLE searches (
    id          TEXT PRIMARY KEY,
    project     TEXT NOT NULL REFERENCES projects(name),
    user        TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL,
    reason      TEXT NOT NULL DEFAULT '',
    config      TEXT NOT NULL,             -- JSON: the search as parsed and completed at submit
    template    TEXT NOT NULL,             -- JSON: the job each trial is a copy of
    trials      INTEGER NOT NULL DEFAULT 0, -- trials submitted so far
    created_at  INTEGER NOT NULL,           -- unix nanoseconds
    finished_at INTEGER
);
CREATE INDEX searches_project ON searches(project, created_at);
CREATE INDEX searches_state ON searches(state);

-- A search's decision about one trial at one rung. No reference to jobs: the decisions of a
-- search stay when one of its finished trials is deleted.
CREATE TABLE search_rungs (
    seq        INTEGER PRIMARY KEY,        -- the order decisions were made in
    search_id  TEXT NOT NULL REFERENCES searches(id) ON DELETE CASCADE,
    job_id     TEXT NOT NULL,
    trial      INTEGER NOT NULL,
    rung       INTEGER NOT NULL,
    step       INTEGER NOT NULL,
    value      REAL NOT NULL,
    stop       INTEGER NOT NULL,           -- 1: the trial was stopped at this rung
    created_at INTEGER NOT NULL,
    UNIQUE (search_id, job_id, rung)
);
