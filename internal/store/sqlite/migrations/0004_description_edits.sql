-- Every edit of a project's description: who made it, when, and the text it left. The last
-- one says who edited the description last; descriptions written before this table existed
-- have no edit.
CREATE TABLE description_edits (
    id          INTEGER PRIMARY KEY,
    project     TEXT NOT NULL REFERENCES projects(name),
    editor      TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX description_edits_project ON description_edits(project, id);
