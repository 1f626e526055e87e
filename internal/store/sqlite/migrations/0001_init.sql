-- Jobs, the queue, and everything tracked for them.
CREATE TABLE projects (
    name        TEXT PRIMARY KEY,
    created_at  INTEGER NOT NULL,          -- unix nanoseconds
    updated_at  INTEGER NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE jobs (
    id             TEXT PRIMARY KEY,
    seq            INTEGER NOT NULL UNIQUE,
    project        TEXT NOT NULL REFERENCES projects(name),
    user           TEXT NOT NULL DEFAULT '',
    state          TEXT NOT NULL,
    mode           TEXT NOT NULL,
    priority       INTEGER NOT NULL DEFAULT 0,
    parent_id      TEXT NOT NULL DEFAULT '',
    command        TEXT NOT NULL DEFAULT '[]',  -- JSON
    entrypoint     TEXT NOT NULL DEFAULT '[]',  -- JSON
    params         TEXT NOT NULL DEFAULT 'null', -- JSON, the submitted parameters (null: none)
    num_gpus       INTEGER NOT NULL DEFAULT 0,
    ram_gb         REAL NOT NULL DEFAULT 0,
    worker         TEXT NOT NULL DEFAULT '{}',  -- JSON
    run_as         TEXT NOT NULL DEFAULT '',    -- uid:gid
    bundle_digest  TEXT NOT NULL DEFAULT '',
    archive_digest TEXT NOT NULL DEFAULT '',
    executor       TEXT NOT NULL DEFAULT '',
    gpu_ids        TEXT NOT NULL DEFAULT '[]',  -- JSON
    exit_code      INTEGER,
    reason         TEXT NOT NULL DEFAULT '',
    stop_requested INTEGER NOT NULL DEFAULT 0,
    run_info       TEXT NOT NULL DEFAULT '',
    token_hash     TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    finished_at    INTEGER,
    heartbeat_at   INTEGER
);
CREATE INDEX jobs_project_created ON jobs(project, created_at);
CREATE INDEX jobs_state ON jobs(state, priority, seq);
CREATE INDEX jobs_bundle ON jobs(bundle_digest);
CREATE INDEX jobs_archive ON jobs(archive_digest);

-- params and metric_summary repeat the job's project so that a project's job table can be
-- sorted by a param or metric straight from an index.
CREATE TABLE params (
    job_id  TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    project TEXT NOT NULL,
    key     TEXT NOT NULL,
    value  TEXT NOT NULL,   -- JSON
    num    REAL,            -- the value when it is a number, for sorting and range filters
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;
CREATE INDEX params_key ON params(key, num);
CREATE INDEX params_project_key ON params(project, key, num);

-- Metric points are stored in chunks: one row per key per batch, so a batch of 10,000 points
-- is a handful of inserts.
CREATE TABLE metric_chunks (
    id     INTEGER PRIMARY KEY,
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    steps  TEXT NOT NULL,   -- JSON array of integers
    vals   TEXT NOT NULL,   -- JSON array of numbers or strings
    times  TEXT NOT NULL    -- JSON array of unix seconds
);
CREATE INDEX metric_chunks_job_key ON metric_chunks(job_id, key, id);

CREATE TABLE metric_summary (
    job_id    TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    project   TEXT NOT NULL,
    key       TEXT NOT NULL,
    count     INTEGER NOT NULL,
    last      TEXT NOT NULL,  -- JSON
    last_num  REAL,
    last_step INTEGER NOT NULL,
    min       REAL,
    max       REAL,
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;
CREATE INDEX metric_summary_key ON metric_summary(key, last_num);
CREATE INDEX metric_summary_project_key ON metric_summary(project, key, last_num);

CREATE TABLE tags (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;

CREATE TABLE artifacts (
    job_id     TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    key        TEXT NOT NULL,
    filename   TEXT NOT NULL,
    digest     TEXT NOT NULL,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (job_id, key)
) WITHOUT ROWID;
CREATE INDEX artifacts_digest ON artifacts(digest);

-- The last batch sequence number applied per SDK writer: retries are stored once.
CREATE TABLE writer_seqs (
    job_id TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    writer TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    PRIMARY KEY (job_id, writer)
) WITHOUT ROWID;

-- The param and metric keys used in each project: the columns of its job table.
CREATE TABLE project_keys (
    project TEXT NOT NULL REFERENCES projects(name),
    kind    TEXT NOT NULL,  -- 'param' or 'metric'
    key     TEXT NOT NULL,
    PRIMARY KEY (project, kind, key)
) WITHOUT ROWID;

CREATE TABLE notes (
    id         INTEGER PRIMARY KEY,
    project    TEXT NOT NULL REFERENCES projects(name),
    author     TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX notes_project ON notes(project, created_at);
