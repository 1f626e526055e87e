-- Jobs, the queue, and everything tracked for them: the tables and indexes of the SQLite
-- schema, in PostgreSQL types.
--
-- Times are BIGINT unix nanoseconds, as in SQLite, so both backends return the same instants
-- and compute durations alike. JSON that PostgreSQL may be asked to look into (a job's command,
-- params, worker settings) is JSONB; JSON the store compares as text (param values and last
-- metric values, matched byte for byte by filters, as in SQLite) or only reads back whole
-- (metric chunks) is TEXT. Text that is sorted or indexed is COLLATE "C": byte order, as in
-- SQLite, whatever the database's locale, and ILIKE then folds ASCII only, as SQLite's LIKE.
CREATE TABLE projects (
    name        TEXT COLLATE "C" PRIMARY KEY,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    description TEXT NOT NULL DEFAULT ''
);

CREATE TABLE jobs (
    id             TEXT COLLATE "C" PRIMARY KEY,
    seq            BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE, -- submit order; gaps are harmless
    project        TEXT COLLATE "C" NOT NULL REFERENCES projects(name),
    "user"         TEXT COLLATE "C" NOT NULL DEFAULT '',
    state          TEXT COLLATE "C" NOT NULL,
    mode           TEXT COLLATE "C" NOT NULL,
    priority       INTEGER NOT NULL DEFAULT 0,
    parent_id      TEXT NOT NULL DEFAULT '',
    command        JSONB NOT NULL DEFAULT '[]',
    entrypoint     JSONB NOT NULL DEFAULT '[]',
    params         JSONB NOT NULL DEFAULT 'null', -- the submitted parameters (null: none)
    num_gpus       INTEGER NOT NULL DEFAULT 0,
    ram_gb         DOUBLE PRECISION NOT NULL DEFAULT 0,
    worker         JSONB NOT NULL DEFAULT '{}',
    run_as         TEXT NOT NULL DEFAULT '',    -- uid:gid
    bundle_digest  TEXT NOT NULL DEFAULT '',
    archive_digest TEXT NOT NULL DEFAULT '',
    executor       TEXT NOT NULL DEFAULT '',
    gpu_ids        JSONB NOT NULL DEFAULT '[]',
    exit_code      INTEGER,
    reason         TEXT NOT NULL DEFAULT '',
    stop_requested BOOLEAN NOT NULL DEFAULT FALSE,
    run_info       TEXT NOT NULL DEFAULT '',
    token_hash     TEXT NOT NULL DEFAULT '',
    created_at     BIGINT NOT NULL,
    started_at     BIGINT,
    finished_at    BIGINT,
    heartbeat_at   BIGINT
);
CREATE INDEX jobs_project_created ON jobs(project, created_at);
CREATE INDEX jobs_state ON jobs(state, priority, seq);
CREATE INDEX jobs_bundle ON jobs(bundle_digest);
CREATE INDEX jobs_archive ON jobs(archive_digest);

-- params and metric_summary repeat the job's project so that a project's job table can be
-- sorted by a param or metric straight from an index.
CREATE TABLE params (
    job_id  TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    project TEXT COLLATE "C" NOT NULL,
    key     TEXT COLLATE "C" NOT NULL,
    value   TEXT COLLATE "C" NOT NULL,  -- JSON
    num     DOUBLE PRECISION,           -- the value when it is a number, for sorting and range filters
    PRIMARY KEY (job_id, key)
);
CREATE INDEX params_key ON params(key, num);
CREATE INDEX params_project_key ON params(project, key, num);

-- Metric points are stored in chunks: one row per key per batch, so a batch of 10,000 points
-- is a handful of inserts.
CREATE TABLE metric_chunks (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    key    TEXT COLLATE "C" NOT NULL,
    steps  TEXT NOT NULL,   -- JSON array of integers
    vals   TEXT NOT NULL,   -- JSON array of numbers or strings
    times  TEXT NOT NULL    -- JSON array of unix seconds
);
CREATE INDEX metric_chunks_job_key ON metric_chunks(job_id, key, id);

CREATE TABLE metric_summary (
    job_id    TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    project   TEXT COLLATE "C" NOT NULL,
    key       TEXT COLLATE "C" NOT NULL,
    count     BIGINT NOT NULL,
    last      TEXT COLLATE "C" NOT NULL,  -- JSON
    last_num  DOUBLE PRECISION,
    last_step BIGINT NOT NULL,
    min       DOUBLE PRECISION,
    max       DOUBLE PRECISION,
    PRIMARY KEY (job_id, key)
);
CREATE INDEX metric_summary_key ON metric_summary(key, last_num);
CREATE INDEX metric_summary_project_key ON metric_summary(project, key, last_num);

CREATE TABLE tags (
    job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    key    TEXT COLLATE "C" NOT NULL,
    value  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (job_id, key)
);

CREATE TABLE artifacts (
    job_id     TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    key        TEXT COLLATE "C" NOT NULL,
    filename   TEXT NOT NULL,
    digest     TEXT NOT NULL,
    size       BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (job_id, key)
);
CREATE INDEX artifacts_digest ON artifacts(digest);

-- The last batch sequence number applied per SDK writer: retries are stored once.
CREATE TABLE writer_seqs (
    job_id TEXT COLLATE "C" NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    writer TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    PRIMARY KEY (job_id, writer)
);

-- The param and metric keys used in each project: the columns of its job table.
CREATE TABLE project_keys (
    project TEXT COLLATE "C" NOT NULL REFERENCES projects(name),
    kind    TEXT NOT NULL,  -- 'param' or 'metric'
    key     TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (project, kind, key)
);

CREATE TABLE notes (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    project    TEXT COLLATE "C" NOT NULL REFERENCES projects(name),
    author     TEXT NOT NULL DEFAULT '',
    message    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX notes_project ON notes(project, created_at);
