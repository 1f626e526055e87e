-- A job's human-readable name: the submitter's own or one generated at submit. Jobs stored
-- before names existed keep '' (clients show their id instead).
ALTER TABLE jobs ADD COLUMN name TEXT NOT NULL DEFAULT '';
