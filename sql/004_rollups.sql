-- Rollups: hourly and daily weighing totals, hourly bin fill.
--
-- The API reads only weighing_hourly, weighing_daily and bin_hourly. With TimescaleDB they
-- are real-time continuous aggregates; on plain PostgreSQL they are tables of the same names
-- and columns. Either way the same query gives the same answer.
--
-- Plain PostgreSQL keeps them current two ways, which a test holds equal:
-- * ingest moves each batch in with pisman_insert_staged_weighings() / _bins(): one statement
--   inserts the staged rows and adds exactly the rows it inserted (RETURNING, so re-deliveries
--   add nothing) to their buckets, in the batch's own transaction (a rolled-back batch adds
--   nothing either). Cost follows the batch, not the size of the hour it lands in.
-- * pisman_refresh_*_rollups() and pisman_rebuild_rollups() recompute buckets from raw rows
--   (for rows written by other means, and for repair).
-- bin_hourly stores the sum of fill ratios, not their mean, so that increments are exact:
-- readers divide by readings, which is precisely what avg() computes.
--
-- Hours are UTC hours (Indonesian zones are whole hours from UTC, without daylight saving);
-- days are local days in pisman_rollup_timezone(), fixed when the schema was built.

DO $$
BEGIN
  IF pisman_has_timescale() THEN
    EXECUTE $ts$
      CREATE MATERIALIZED VIEW weighing_hourly
      WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
      SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket,
             city_id, site_id, material, stream, from_own_site,
             sum(net_kg) AS net_kg,
             count(*) AS weighings,
             count(*) FILTER (WHERE manual) AS manual_weighings,
             sum(net_kg * price_per_kg) AS amount_rp
      FROM weighing
      GROUP BY time_bucket(INTERVAL '1 hour', ts), city_id, site_id, material, stream, from_own_site
      WITH NO DATA
    $ts$;
    EXECUTE format($ts$
      CREATE MATERIALIZED VIEW weighing_daily
      WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
      SELECT time_bucket(INTERVAL '1 day', bucket, %L) AS bucket,
             city_id, site_id, material, stream, from_own_site,
             sum(net_kg) AS net_kg,
             sum(weighings)::bigint AS weighings,
             sum(manual_weighings)::bigint AS manual_weighings,
             sum(amount_rp) AS amount_rp
      FROM weighing_hourly
      GROUP BY time_bucket(INTERVAL '1 day', bucket, %L), city_id, site_id, material, stream, from_own_site
      WITH NO DATA
    $ts$, pisman_rollup_timezone(), pisman_rollup_timezone());
    EXECUTE $ts$
      CREATE MATERIALIZED VIEW bin_hourly
      WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
      SELECT time_bucket(INTERVAL '1 hour', ts) AS bucket,
             city_id, site_id, device_id,
             sum(fill_ratio) AS sum_fill_ratio,
             max(fill_ratio) AS max_fill_ratio,
             min(battery_pct) AS min_battery_pct,
             count(*) AS readings
      FROM bin_reading
      GROUP BY time_bucket(INTERVAL '1 hour', ts), city_id, site_id, device_id
      WITH NO DATA
    $ts$;
    -- start_offset reaches far back so that a backlog flushed days late is still folded in;
    -- any retention policy must drop raw data only well beyond it.
    EXECUTE $ts$
      SELECT add_continuous_aggregate_policy('weighing_hourly',
        start_offset => INTERVAL '400 days', end_offset => INTERVAL '1 hour',
        schedule_interval => INTERVAL '5 minutes')
    $ts$;
    EXECUTE $ts$
      SELECT add_continuous_aggregate_policy('weighing_daily',
        start_offset => INTERVAL '400 days', end_offset => INTERVAL '1 day',
        schedule_interval => INTERVAL '30 minutes')
    $ts$;
    EXECUTE $ts$
      SELECT add_continuous_aggregate_policy('bin_hourly',
        start_offset => INTERVAL '400 days', end_offset => INTERVAL '1 hour',
        schedule_interval => INTERVAL '5 minutes')
    $ts$;
  ELSE
    CREATE TABLE weighing_hourly (
      bucket           timestamptz NOT NULL,
      city_id          text NOT NULL,
      site_id          text NOT NULL,
      material         text NOT NULL,
      stream           text NOT NULL,
      from_own_site    boolean NOT NULL,
      net_kg           numeric,
      weighings        bigint,
      manual_weighings bigint,
      amount_rp        numeric,
      PRIMARY KEY (site_id, bucket, material, stream, from_own_site)
    );
    CREATE TABLE weighing_daily (LIKE weighing_hourly INCLUDING ALL);
    CREATE TABLE bin_hourly (
      bucket          timestamptz NOT NULL,
      city_id         text NOT NULL,
      site_id         text NOT NULL,
      device_id       text NOT NULL,
      sum_fill_ratio  numeric,
      max_fill_ratio  numeric,
      min_battery_pct numeric,
      readings        bigint,
      PRIMARY KEY (device_id, bucket)
    );
  END IF;
END
$$;

-- Both paths: queries filter by city and time.
CREATE INDEX weighing_hourly_city_bucket_idx ON weighing_hourly (city_id, bucket);
CREATE INDEX weighing_daily_city_bucket_idx ON weighing_daily (city_id, bucket);
CREATE INDEX bin_hourly_city_bucket_idx ON bin_hourly (city_id, bucket);

-- Recompute the hourly and daily weighing buckets of the given (site, hour) pairs.
-- A no-op with TimescaleDB, whose continuous aggregates track changes themselves.
CREATE FUNCTION pisman_refresh_weighing_rollups(p_site_ids text[], p_hours timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tz text := pisman_rollup_timezone();
BEGIN
  IF pisman_has_timescale() THEN
    RETURN;
  END IF;
  -- Two ingest processes may touch the same site at once; each recomputation must see the
  -- other's committed rows, so take per-site locks (sorted: no deadlock) before reading.
  PERFORM pg_advisory_xact_lock(hashtextextended('pisman.rollup.site.' || s.site_id, 0))
  FROM (SELECT DISTINCT site_id FROM unnest(p_site_ids) AS u(site_id) ORDER BY site_id) AS s;

  INSERT INTO weighing_hourly AS h
    (bucket, city_id, site_id, material, stream, from_own_site,
     net_kg, weighings, manual_weighings, amount_rp)
  SELECT date_trunc('hour', w.ts, 'UTC'), w.city_id, w.site_id, w.material, w.stream, w.from_own_site,
         sum(w.net_kg), count(*), count(*) FILTER (WHERE w.manual), sum(w.net_kg * w.price_per_kg)
  FROM (SELECT DISTINCT k.site_id, date_trunc('hour', k.hour, 'UTC') AS hour
        FROM unnest(p_site_ids, p_hours) AS k(site_id, hour)) AS k
  JOIN weighing w ON w.site_id = k.site_id AND w.ts >= k.hour AND w.ts < k.hour + INTERVAL '1 hour'
  GROUP BY 1, 2, 3, 4, 5, 6
  ON CONFLICT (site_id, bucket, material, stream, from_own_site) DO UPDATE
    SET net_kg = EXCLUDED.net_kg, weighings = EXCLUDED.weighings,
        manual_weighings = EXCLUDED.manual_weighings, amount_rp = EXCLUDED.amount_rp,
        city_id = EXCLUDED.city_id;

  INSERT INTO weighing_daily AS d
    (bucket, city_id, site_id, material, stream, from_own_site,
     net_kg, weighings, manual_weighings, amount_rp)
  SELECT date_trunc('day', h.bucket, tz), h.city_id, h.site_id, h.material, h.stream, h.from_own_site,
         sum(h.net_kg), sum(h.weighings)::bigint, sum(h.manual_weighings)::bigint, sum(h.amount_rp)
  FROM (SELECT DISTINCT k.site_id, date_trunc('day', k.hour, tz) AS day
        FROM unnest(p_site_ids, p_hours) AS k(site_id, hour)) AS k
  JOIN weighing_hourly h ON h.site_id = k.site_id AND h.bucket >= k.day AND h.bucket < k.day + INTERVAL '24 hours'
  GROUP BY 1, 2, 3, 4, 5, 6
  ON CONFLICT (site_id, bucket, material, stream, from_own_site) DO UPDATE
    SET net_kg = EXCLUDED.net_kg, weighings = EXCLUDED.weighings,
        manual_weighings = EXCLUDED.manual_weighings, amount_rp = EXCLUDED.amount_rp,
        city_id = EXCLUDED.city_id;
END
$$;

-- Recompute the hourly bin buckets of the given (device, hour) pairs. No-op with TimescaleDB.
CREATE FUNCTION pisman_refresh_bin_rollups(p_device_ids text[], p_hours timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF pisman_has_timescale() THEN
    RETURN;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('pisman.rollup.device.' || s.device_id, 0))
  FROM (SELECT DISTINCT device_id FROM unnest(p_device_ids) AS u(device_id) ORDER BY device_id) AS s;

  INSERT INTO bin_hourly AS b
    (bucket, city_id, site_id, device_id, sum_fill_ratio, max_fill_ratio, min_battery_pct, readings)
  SELECT date_trunc('hour', r.ts, 'UTC'), r.city_id, r.site_id, r.device_id,
         sum(r.fill_ratio), max(r.fill_ratio), min(r.battery_pct), count(*)
  FROM (SELECT DISTINCT k.device_id, date_trunc('hour', k.hour, 'UTC') AS hour
        FROM unnest(p_device_ids, p_hours) AS k(device_id, hour)) AS k
  JOIN bin_reading r ON r.device_id = k.device_id AND r.ts >= k.hour AND r.ts < k.hour + INTERVAL '1 hour'
  GROUP BY 1, 2, 3, 4
  ON CONFLICT (device_id, bucket) DO UPDATE
    SET sum_fill_ratio = EXCLUDED.sum_fill_ratio, max_fill_ratio = EXCLUDED.max_fill_ratio,
        min_battery_pct = EXCLUDED.min_battery_pct, readings = EXCLUDED.readings,
        city_id = EXCLUDED.city_id, site_id = EXCLUDED.site_id;
END
$$;

-- Recompute every rollup bucket in [p_from, p_to) from raw rows, widened to whole local days
-- (after a bulk load that bypassed ingest). With TimescaleDB, call
-- refresh_continuous_aggregate() instead: it cannot run inside a function.
CREATE FUNCTION pisman_rebuild_rollups(p_from timestamptz, p_to timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tz text := pisman_rollup_timezone();
  day_from timestamptz := date_trunc('day', p_from, tz);
  day_to timestamptz := date_trunc('day', p_to - INTERVAL '1 microsecond', tz) + INTERVAL '24 hours';
BEGIN
  IF pisman_has_timescale() THEN
    RAISE EXCEPTION 'pisman_rebuild_rollups is for plain PostgreSQL; use refresh_continuous_aggregate()';
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('pisman.rollup.rebuild', 0));
  LOCK TABLE weighing_hourly, weighing_daily, bin_hourly IN EXCLUSIVE MODE;

  DELETE FROM weighing_hourly WHERE bucket >= day_from AND bucket < day_to;
  INSERT INTO weighing_hourly
    (bucket, city_id, site_id, material, stream, from_own_site,
     net_kg, weighings, manual_weighings, amount_rp)
  SELECT date_trunc('hour', ts, 'UTC'), city_id, site_id, material, stream, from_own_site,
         sum(net_kg), count(*), count(*) FILTER (WHERE manual), sum(net_kg * price_per_kg)
  FROM weighing WHERE ts >= day_from AND ts < day_to
  GROUP BY 1, 2, 3, 4, 5, 6;

  DELETE FROM weighing_daily WHERE bucket >= day_from AND bucket < day_to;
  INSERT INTO weighing_daily
    (bucket, city_id, site_id, material, stream, from_own_site,
     net_kg, weighings, manual_weighings, amount_rp)
  SELECT date_trunc('day', bucket, tz), city_id, site_id, material, stream, from_own_site,
         sum(net_kg), sum(weighings)::bigint, sum(manual_weighings)::bigint, sum(amount_rp)
  FROM weighing_hourly WHERE bucket >= day_from AND bucket < day_to
  GROUP BY 1, 2, 3, 4, 5, 6;

  DELETE FROM bin_hourly WHERE bucket >= day_from AND bucket < day_to;
  INSERT INTO bin_hourly
    (bucket, city_id, site_id, device_id, sum_fill_ratio, max_fill_ratio, min_battery_pct, readings)
  SELECT date_trunc('hour', ts, 'UTC'), city_id, site_id, device_id,
         sum(fill_ratio), max(fill_ratio), min(battery_pct), count(*)
  FROM bin_reading WHERE ts >= day_from AND ts < day_to
  GROUP BY 1, 2, 3, 4;
END
$$;

-- Optional retention of raw bin readings (weighings are the official record and are kept).
-- Set PISMAN_BIN_RETENTION_DAYS (>= 450, beyond the aggregates' 400-day refresh window).
DO $$
DECLARE
  days integer := nullif(current_setting('pisman.bin_retention_days', true), '')::integer;
BEGIN
  IF days IS NOT NULL AND days < 450 THEN
    RAISE EXCEPTION 'bin retention of % days would cut into the 400-day rollup refresh window', days;
  END IF;
  IF days IS NOT NULL AND pisman_has_timescale() THEN
    EXECUTE format($ts$
      SELECT add_retention_policy('bin_reading', drop_after => %L::interval)
    $ts$, days || ' days');
  END IF;
END
$$;

-- Ingest's write path for weighings: move the rows staged in the session's temp table
-- stage_weighing (created LIKE weighing) into weighing, skipping re-deliveries, and on plain
-- PostgreSQL add the inserted rows to the hourly and daily rollups in the same statement.
-- Returns the inserted rows' (device_id, site_id, ts).
CREATE FUNCTION pisman_insert_staged_weighings()
RETURNS TABLE (device_id text, site_id text, ts timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  tz text := pisman_rollup_timezone();
BEGIN
  IF pisman_has_timescale() THEN
    RETURN QUERY
      WITH ins AS (
        INSERT INTO weighing SELECT * FROM stage_weighing
        ON CONFLICT (device_id, ts, seq) DO NOTHING
        RETURNING device_id, site_id, ts
      )
      SELECT ins.device_id, ins.site_id, ins.ts FROM ins;
    RETURN;
  END IF;
  -- The same per-site locks as pisman_refresh_weighing_rollups(), taken before the rows go
  -- in, so that a recomputation running at the same time never overwrites an increment.
  PERFORM pg_advisory_xact_lock(hashtextextended('pisman.rollup.site.' || s.site_id, 0))
  FROM (SELECT DISTINCT site_id FROM stage_weighing ORDER BY site_id) AS s;
  RETURN QUERY
    WITH ins AS (
      INSERT INTO weighing SELECT * FROM stage_weighing
      ON CONFLICT (device_id, ts, seq) DO NOTHING
      RETURNING *
    ), hourly AS (
      INSERT INTO weighing_hourly AS h
        (bucket, city_id, site_id, material, stream, from_own_site,
         net_kg, weighings, manual_weighings, amount_rp)
      SELECT date_trunc('hour', i.ts, 'UTC'), i.city_id, i.site_id, i.material, i.stream, i.from_own_site,
             sum(i.net_kg), count(*), count(*) FILTER (WHERE i.manual), sum(i.net_kg * i.price_per_kg)
      FROM ins AS i
      GROUP BY 1, 2, 3, 4, 5, 6
      ORDER BY 3, 1, 4, 5, 6  -- one lock order for every writer
      ON CONFLICT (site_id, bucket, material, stream, from_own_site) DO UPDATE
        SET net_kg = h.net_kg + EXCLUDED.net_kg,
            weighings = h.weighings + EXCLUDED.weighings,
            manual_weighings = h.manual_weighings + EXCLUDED.manual_weighings,
            amount_rp = CASE WHEN h.amount_rp IS NULL THEN EXCLUDED.amount_rp
                             WHEN EXCLUDED.amount_rp IS NULL THEN h.amount_rp
                             ELSE h.amount_rp + EXCLUDED.amount_rp END
    ), daily AS (
      INSERT INTO weighing_daily AS d
        (bucket, city_id, site_id, material, stream, from_own_site,
         net_kg, weighings, manual_weighings, amount_rp)
      SELECT date_trunc('day', i.ts, tz), i.city_id, i.site_id, i.material, i.stream, i.from_own_site,
             sum(i.net_kg), count(*), count(*) FILTER (WHERE i.manual), sum(i.net_kg * i.price_per_kg)
      FROM ins AS i
      GROUP BY 1, 2, 3, 4, 5, 6
      ORDER BY 3, 1, 4, 5, 6
      ON CONFLICT (site_id, bucket, material, stream, from_own_site) DO UPDATE
        SET net_kg = d.net_kg + EXCLUDED.net_kg,
            weighings = d.weighings + EXCLUDED.weighings,
            manual_weighings = d.manual_weighings + EXCLUDED.manual_weighings,
            amount_rp = CASE WHEN d.amount_rp IS NULL THEN EXCLUDED.amount_rp
                             WHEN EXCLUDED.amount_rp IS NULL THEN d.amount_rp
                             ELSE d.amount_rp + EXCLUDED.amount_rp END
    )
    SELECT ins.device_id, ins.site_id, ins.ts FROM ins;
END
$$;

-- The same for bin readings staged in stage_bin_reading (created LIKE bin_reading).
CREATE FUNCTION pisman_insert_staged_bins()
RETURNS TABLE (device_id text, site_id text, ts timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  IF pisman_has_timescale() THEN
    RETURN QUERY
      WITH ins AS (
        INSERT INTO bin_reading SELECT * FROM stage_bin_reading
        ON CONFLICT (device_id, ts, seq) DO NOTHING
        RETURNING device_id, site_id, ts
      )
      SELECT ins.device_id, ins.site_id, ins.ts FROM ins;
    RETURN;
  END IF;
  PERFORM pg_advisory_xact_lock(hashtextextended('pisman.rollup.device.' || s.device_id, 0))
  FROM (SELECT DISTINCT device_id FROM stage_bin_reading ORDER BY device_id) AS s;
  RETURN QUERY
    WITH ins AS (
      INSERT INTO bin_reading SELECT * FROM stage_bin_reading
      ON CONFLICT (device_id, ts, seq) DO NOTHING
      RETURNING *
    ), hourly AS (
      INSERT INTO bin_hourly AS b
        (bucket, city_id, site_id, device_id, sum_fill_ratio, max_fill_ratio, min_battery_pct, readings)
      SELECT date_trunc('hour', i.ts, 'UTC'), i.city_id, i.site_id, i.device_id,
             sum(i.fill_ratio), max(i.fill_ratio), min(i.battery_pct), count(*)
      FROM ins AS i
      GROUP BY 1, 2, 3, 4
      ORDER BY 4, 1
      ON CONFLICT (device_id, bucket) DO UPDATE
        SET sum_fill_ratio = b.sum_fill_ratio + EXCLUDED.sum_fill_ratio,
            max_fill_ratio = GREATEST(b.max_fill_ratio, EXCLUDED.max_fill_ratio),
            min_battery_pct = LEAST(b.min_battery_pct, EXCLUDED.min_battery_pct),
            readings = b.readings + EXCLUDED.readings
    )
    SELECT ins.device_id, ins.site_id, ins.ts FROM ins;
END
$$;
