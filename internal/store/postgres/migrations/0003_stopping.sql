-- A stop under way is a state of its own (stopping), with the time it was asked for, instead
-- of a flag on a running job. Jobs caught mid-stop by the upgrade keep their stop.
ALTER TABLE jobs ADD COLUMN stopping_at BIGINT;
UPDATE jobs SET state = 'stopping', stopping_at = COALESCE(started_at, created_at)
    WHERE stop_requested AND state IN ('starting', 'running');
ALTER TABLE jobs DROP COLUMN stop_requested;
