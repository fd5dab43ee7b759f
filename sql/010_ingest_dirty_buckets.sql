-- Rollup buckets that ingest has written to but not yet recomputed.
--
-- Recomputing a (site, hour) bucket reads every raw row of that hour, so doing it in every
-- batch costs more as the hour fills. Ingest instead records the touched buckets here in the
-- batch's own transaction (so a crash cannot forget them) and recomputes them in a separate
-- short transaction: at once when it is idle, at most every half second under load.
-- With TimescaleDB the refresh functions are no-ops and this table only ever holds a few rows.
CREATE TABLE ingest_dirty_bucket (
  kind text NOT NULL CHECK (kind IN ('weighing', 'bin')),
  key  text NOT NULL,          -- site_id for weighings, device_id for bin readings
  hour timestamptz NOT NULL,   -- any instant in the hour; the refresh truncates it
  PRIMARY KEY (kind, key, hour)
);
