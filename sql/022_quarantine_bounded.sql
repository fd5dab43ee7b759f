-- Quarantine rows stay small and are counted instead of repeated (issue 10).
--
-- * payload keeps at most the first 64 KiB of what the device sent (ingest cuts it);
--   payload_size is the original byte count and payload_sha256 the hash of all of it, so a row
--   whose payload was cut is recognisable (payload_size > length(payload)) and not reprocessed.
-- * One row per message: the same topic and the same bytes, delivered again (after an ingest
--   crash, a broker restart, a retained message, or a device sending them twice) add to
--   times_seen and move last_seen_at; received_at stays the first arrival. The key hashes the
--   topic because a topic may be longer than an index entry can be.
-- Plain table on both backends: nothing here is TimescaleDB-specific.

ALTER TABLE quarantine
  ADD COLUMN payload_size   integer,
  ADD COLUMN payload_sha256 bytea,
  ADD COLUMN times_seen     bigint NOT NULL DEFAULT 1 CHECK (times_seen >= 1),
  ADD COLUMN last_seen_at   timestamptz;

-- Rows from before this file kept their payload whole.
UPDATE quarantine
SET payload_size = length(payload), payload_sha256 = sha256(payload), last_seen_at = received_at;

-- Fold earlier repeats into the first row of each message (its status and reason win).
WITH ranked AS (
  SELECT quarantine_id,
         first_value(quarantine_id) OVER w AS keep_id,
         count(*) OVER w AS seen,
         max(received_at) OVER w AS last_seen
  FROM quarantine
  WINDOW w AS (PARTITION BY md5(topic), payload_sha256 ORDER BY quarantine_id
               ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
),
kept AS (
  UPDATE quarantine AS q SET times_seen = r.seen, last_seen_at = r.last_seen
  FROM ranked AS r
  WHERE q.quarantine_id = r.quarantine_id AND r.quarantine_id = r.keep_id AND r.seen > 1
)
DELETE FROM quarantine AS q
USING ranked AS r
WHERE q.quarantine_id = r.quarantine_id AND r.quarantine_id <> r.keep_id;

ALTER TABLE quarantine
  ALTER COLUMN payload_size SET NOT NULL,
  ALTER COLUMN payload_sha256 SET NOT NULL,
  ALTER COLUMN last_seen_at SET NOT NULL,
  ALTER COLUMN last_seen_at SET DEFAULT now(),
  ADD CONSTRAINT quarantine_payload_size_check CHECK (payload_size >= length(payload));

CREATE UNIQUE INDEX quarantine_message_key ON quarantine (md5(topic), payload_sha256);
