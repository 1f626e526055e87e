-- Params and metrics are sorted and filtered within a project, through the (project, key,
-- number) indexes. The indexes by key alone cost every stored value two more writes to
-- randomly placed index pages (a third of filling a large project) for a listing across every
-- project sorted by a key, which reads the table instead.
DROP INDEX IF EXISTS params_key;
DROP INDEX IF EXISTS metric_summary_key;
