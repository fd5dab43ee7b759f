-- API: version counters that let the API cache tonnage of closed past days exactly.
--
-- The API keeps, per process, the raw tonnage rows of day-aligned queries over days that ended
-- more than two days ago (api/queries/tonnage_cache.py). An entry is reused only while the
-- counters below are unchanged, so late data and edits show at once:
-- * api_closed_day_version: one counter per (city, weighing_daily bucket), bumped by statement
--   triggers on weighing_daily whenever a write touches a day that ended more than one day ago
--   (the API caches only days older than that, so a write always bumps before it can matter,
--   unless one transaction stays open for a whole day). Live ingest into today and yesterday
--   touches no counter: the trigger only scans the statement's own rows.
-- * api_tonnage_reference: one counter bumped by any write to site, district or category_map
--   (every tonnage row joins them) and by TRUNCATE of weighing_daily; `enabled` is false with
--   TimescaleDB, where weighing_daily is a continuous aggregate without triggers and the API
--   therefore does not cache.
-- Plain PostgreSQL only in effect; the tables exist on both paths so the API's check is one
-- statement either way.

CREATE TABLE api_closed_day_version (
  city_id text NOT NULL,
  bucket  timestamptz NOT NULL,
  version bigint NOT NULL DEFAULT 1,
  PRIMARY KEY (city_id, bucket)
);

CREATE TABLE api_tonnage_reference (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  enabled boolean NOT NULL,
  version bigint NOT NULL DEFAULT 0
);
INSERT INTO api_tonnage_reference (enabled) VALUES (NOT pisman_has_timescale());

CREATE FUNCTION api_bump_closed_days() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  horizon timestamptz := date_trunc('day', clock_timestamp(), pisman_rollup_timezone()) - INTERVAL '1 day';
BEGIN
  INSERT INTO api_closed_day_version AS v (city_id, bucket)
  SELECT DISTINCT c.city_id, c.bucket FROM changed_rows AS c WHERE c.bucket < horizon
  ORDER BY 1, 2
  ON CONFLICT (city_id, bucket) DO UPDATE SET version = v.version + 1;
  RETURN NULL;
END
$$;

CREATE FUNCTION api_bump_tonnage_reference() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE api_tonnage_reference SET version = version + 1;
  RETURN NULL;
END
$$;

DO $$
BEGIN
  IF NOT pisman_has_timescale() THEN
    CREATE TRIGGER api_closed_days_insert AFTER INSERT ON weighing_daily
      REFERENCING NEW TABLE AS changed_rows
      FOR EACH STATEMENT EXECUTE FUNCTION api_bump_closed_days();
    CREATE TRIGGER api_closed_days_update AFTER UPDATE ON weighing_daily
      REFERENCING NEW TABLE AS changed_rows
      FOR EACH STATEMENT EXECUTE FUNCTION api_bump_closed_days();
    CREATE TRIGGER api_closed_days_delete AFTER DELETE ON weighing_daily
      REFERENCING OLD TABLE AS changed_rows
      FOR EACH STATEMENT EXECUTE FUNCTION api_bump_closed_days();
    CREATE TRIGGER api_closed_days_truncate AFTER TRUNCATE ON weighing_daily
      FOR EACH STATEMENT EXECUTE FUNCTION api_bump_tonnage_reference();
  END IF;
END
$$;

CREATE TRIGGER api_tonnage_reference_site AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON site
  FOR EACH STATEMENT EXECUTE FUNCTION api_bump_tonnage_reference();
CREATE TRIGGER api_tonnage_reference_district AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON district
  FOR EACH STATEMENT EXECUTE FUNCTION api_bump_tonnage_reference();
CREATE TRIGGER api_tonnage_reference_category_map AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON category_map
  FOR EACH STATEMENT EXECUTE FUNCTION api_bump_tonnage_reference();
