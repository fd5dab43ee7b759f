-- Tonnage at the grain the API reads, kept exact at commit on both backends (issue 9).
--
-- weighing_daily holds site × material × stream × own-site flag × local day: ~96,000 rows a
-- Bandung month, so every district or category view summed ~100,000 rows. The API's views need
-- far fewer:
--   tonnage_daily_district  city, local day, district, site type, process kind, stream,
--                           material, own-site flag (~25,000 rows a Bandung month)
--   tonnage_daily_city      the same without district (~2,000 rows a month): category,
--                           material, site-type views and progress's daily trend
--   tonnage_monthly_site    city, local month, site, stream, material, own-site flag (~5,000
--                           rows a month) plus days_mask (bit d-1 set: the site weighed
--                           something on day d): whole-month views by site, scale coverage
-- Same measures as weighing_daily: net_kg, weighings, manual_weighings, amount_rp.
--
-- Plain tables on BOTH backends, not continuous aggregates: district, site type and process
-- kind are attributes of the site, which an aggregate would freeze when it materialises (a
-- site moved to another district would need the whole history re-materialised), and a table
-- written in the ingest statement is exact at commit: no watermark, late data visible at once,
-- no dependence on TimescaleDB's background jobs (which do not start on every server).
--
-- Kept current by:
-- * pisman_insert_staged_weighings() (ingest's one statement): the rows it inserted are added
--   to their buckets in key order (two ingest processes never deadlock); a rolled-back batch
--   adds nothing. Each batch takes a SHARED advisory lock per city.
-- * a row trigger on site: when a site's district, type or process kind changes (or a site
--   appears or goes), the grain rows its weighings fall in are recomputed from raw `weighing`
--   (the truth on both backends), under the city's EXCLUSIVE advisory lock, so no ingest
--   increment interleaves with the recomputation.
-- * pisman_refresh_weighing_rollups() (rows written by other means) recomputes the touched
--   sites' grain rows too, now on both backends.
-- * pisman_rebuild_tonnage_grain(from, to): repair from raw on either backend; plain
--   PostgreSQL's pisman_rebuild_rollups() calls it.
-- category_map and district names are joined at query time: an edit needs nothing here.
-- process_kind is NULL except at processing sites: keys treat NULLs as equal
-- (UNIQUE NULLS NOT DISTINCT, PostgreSQL 15).

CREATE TABLE tonnage_daily_district (
  bucket           timestamptz NOT NULL,
  city_id          text NOT NULL,
  district_id      text NOT NULL,
  site_type        text NOT NULL,
  process_kind     text,
  stream           text NOT NULL,
  material         text NOT NULL,
  from_own_site    boolean NOT NULL,
  net_kg           numeric NOT NULL,
  weighings        bigint NOT NULL,
  manual_weighings bigint NOT NULL,
  amount_rp        numeric,
  CONSTRAINT tonnage_daily_district_key UNIQUE NULLS NOT DISTINCT
    (city_id, bucket, district_id, site_type, process_kind, stream, material, from_own_site)
);

CREATE TABLE tonnage_daily_city (
  bucket           timestamptz NOT NULL,
  city_id          text NOT NULL,
  site_type        text NOT NULL,
  process_kind     text,
  stream           text NOT NULL,
  material         text NOT NULL,
  from_own_site    boolean NOT NULL,
  net_kg           numeric NOT NULL,
  weighings        bigint NOT NULL,
  manual_weighings bigint NOT NULL,
  amount_rp        numeric,
  CONSTRAINT tonnage_daily_city_key UNIQUE NULLS NOT DISTINCT
    (city_id, bucket, site_type, process_kind, stream, material, from_own_site)
);

CREATE TABLE tonnage_monthly_site (
  bucket           timestamptz NOT NULL,
  city_id          text NOT NULL,
  site_id          text NOT NULL,
  stream           text NOT NULL,
  material         text NOT NULL,
  from_own_site    boolean NOT NULL,
  net_kg           numeric NOT NULL,
  weighings        bigint NOT NULL,
  manual_weighings bigint NOT NULL,
  amount_rp        numeric,
  days_mask        integer NOT NULL,
  PRIMARY KEY (city_id, bucket, site_id, stream, material, from_own_site)
);
-- The days a site has data (the site trigger below) are found by site.
CREATE INDEX tonnage_monthly_site_site_idx ON tonnage_monthly_site (site_id, bucket);

-- Recompute the district-grain rows of one city on the given local days for the given
-- (district, site type, process kind) keys, from raw weighings. Caller holds the city's lock.
CREATE FUNCTION pisman_recompute_tonnage_district(
  p_city text, p_days timestamptz[], p_districts text[], p_site_types text[], p_process_kinds text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tz text := pisman_rollup_timezone();
  -- One range scan with a day filter (on TimescaleDB a compressed chunk is decompressed once,
  -- not once per day).
  lo timestamptz := (SELECT min(d) FROM unnest(p_days) AS u(d));
  hi timestamptz := (SELECT max(d) FROM unnest(p_days) AS u(d)) + INTERVAL '24 hours';
BEGIN
  DELETE FROM tonnage_daily_district AS t
  USING (SELECT DISTINCT * FROM unnest(p_districts, p_site_types, p_process_kinds)
           AS k(district_id, site_type, process_kind)) AS k
  WHERE t.city_id = p_city AND t.bucket = ANY (p_days)
    AND t.district_id = k.district_id AND t.site_type = k.site_type
    AND t.process_kind IS NOT DISTINCT FROM k.process_kind;
  INSERT INTO tonnage_daily_district
    (bucket, city_id, district_id, site_type, process_kind, stream, material, from_own_site,
     net_kg, weighings, manual_weighings, amount_rp)
  SELECT date_trunc('day', w.ts, tz), w.city_id, s.district_id, s.site_type, s.process_kind,
         w.stream, w.material, w.from_own_site,
         sum(w.net_kg), count(*), count(*) FILTER (WHERE w.manual), sum(w.net_kg * w.price_per_kg)
  FROM (SELECT DISTINCT * FROM unnest(p_districts, p_site_types, p_process_kinds)
          AS k(district_id, site_type, process_kind)) AS k
  JOIN site AS s
    ON s.district_id = k.district_id AND s.site_type = k.site_type
   AND s.process_kind IS NOT DISTINCT FROM k.process_kind
  JOIN weighing AS w ON w.site_id = s.site_id
  WHERE w.city_id = p_city AND w.ts >= lo AND w.ts < hi AND date_trunc('day', w.ts, tz) = ANY (p_days)
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
  ORDER BY 2, 1, 3, 4, 5, 6, 7, 8;
END
$$;

-- The same for the city grain and (site type, process kind) keys.
CREATE FUNCTION pisman_recompute_tonnage_city(
  p_city text, p_days timestamptz[], p_site_types text[], p_process_kinds text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tz text := pisman_rollup_timezone();
  -- One range scan with a day filter (on TimescaleDB a compressed chunk is decompressed once,
  -- not once per day).
  lo timestamptz := (SELECT min(d) FROM unnest(p_days) AS u(d));
  hi timestamptz := (SELECT max(d) FROM unnest(p_days) AS u(d)) + INTERVAL '24 hours';
BEGIN
  DELETE FROM tonnage_daily_city AS t
  USING (SELECT DISTINCT * FROM unnest(p_site_types, p_process_kinds)
           AS k(site_type, process_kind)) AS k
  WHERE t.city_id = p_city AND t.bucket = ANY (p_days)
    AND t.site_type = k.site_type AND t.process_kind IS NOT DISTINCT FROM k.process_kind;
  INSERT INTO tonnage_daily_city
    (bucket, city_id, site_type, process_kind, stream, material, from_own_site,
     net_kg, weighings, manual_weighings, amount_rp)
  SELECT date_trunc('day', w.ts, tz), w.city_id, s.site_type, s.process_kind,
         w.stream, w.material, w.from_own_site,
         sum(w.net_kg), count(*), count(*) FILTER (WHERE w.manual), sum(w.net_kg * w.price_per_kg)
  FROM (SELECT DISTINCT * FROM unnest(p_site_types, p_process_kinds)
          AS k(site_type, process_kind)) AS k
  JOIN site AS s ON s.site_type = k.site_type AND s.process_kind IS NOT DISTINCT FROM k.process_kind
  JOIN weighing AS w ON w.site_id = s.site_id
  WHERE w.city_id = p_city AND w.ts >= lo AND w.ts < hi AND date_trunc('day', w.ts, tz) = ANY (p_days)
  GROUP BY 1, 2, 3, 4, 5, 6, 7
  ORDER BY 2, 1, 3, 4, 5, 6, 7;
END
$$;

-- The same for the site-month grain: the given sites in the given local months.
CREATE FUNCTION pisman_recompute_tonnage_site_month(
  p_city text, p_months timestamptz[], p_sites text[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tz text := pisman_rollup_timezone();
  lo timestamptz := (SELECT min(m) FROM unnest(p_months) AS u(m));
  hi timestamptz := ((SELECT max(m) FROM unnest(p_months) AS u(m)) AT TIME ZONE tz
                     + INTERVAL '1 month') AT TIME ZONE tz;
BEGIN
  DELETE FROM tonnage_monthly_site AS t
  WHERE t.city_id = p_city AND t.bucket = ANY (p_months) AND t.site_id = ANY (p_sites);
  INSERT INTO tonnage_monthly_site
    (bucket, city_id, site_id, stream, material, from_own_site,
     net_kg, weighings, manual_weighings, amount_rp, days_mask)
  SELECT date_trunc('month', w.ts, tz), w.city_id, w.site_id, w.stream, w.material, w.from_own_site,
         sum(w.net_kg), count(*), count(*) FILTER (WHERE w.manual), sum(w.net_kg * w.price_per_kg),
         bit_or(1 << (extract(day FROM w.ts AT TIME ZONE tz)::int - 1))
  FROM weighing AS w
  WHERE w.city_id = p_city AND w.site_id = ANY (p_sites) AND w.ts >= lo AND w.ts < hi
    AND date_trunc('month', w.ts, tz) = ANY (p_months)
  GROUP BY 1, 2, 3, 4, 5, 6
  ORDER BY 2, 1, 3, 4, 5, 6;
END
$$;

-- The lock that orders ingest's increments (shared) against recomputations (exclusive).
CREATE FUNCTION pisman_tonnage_lock_key(p_city text) RETURNS bigint
LANGUAGE sql IMMUTABLE AS $$
  SELECT hashtextextended('pisman.tonnage.city.' || p_city, 0)
$$;

-- Local days on which a site weighed something, from the site-month grain's day masks (exact
-- at commit on both backends, and indexed by site: no scan of raw rows to find them).
CREATE FUNCTION pisman_site_weighing_days(p_site_ids text[])
RETURNS TABLE (city_id text, day timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT DISTINCT t.city_id,
         (t.bucket AT TIME ZONE pisman_rollup_timezone() + make_interval(days => d.i - 1))
           AT TIME ZONE pisman_rollup_timezone()
  FROM tonnage_monthly_site AS t
  CROSS JOIN generate_series(1, 31) AS d(i)
  WHERE t.site_id = ANY (p_site_ids) AND t.days_mask & (1 << (d.i - 1)) <> 0
$$;

-- Recompute every grain row the given sites' weighings in the given hours fall in (after rows
-- were written into `weighing` other than through ingest). Takes the cities' exclusive locks.
CREATE FUNCTION pisman_recompute_tonnage_for_sites(p_site_ids text[], p_hours timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tz text := pisman_rollup_timezone();
  c record;
BEGIN
  PERFORM pg_advisory_xact_lock(pisman_tonnage_lock_key(x.city_id))
  FROM (SELECT DISTINCT s.city_id FROM site AS s WHERE s.site_id = ANY (p_site_ids)
        ORDER BY 1) AS x;
  FOR c IN
    SELECT s.city_id,
           array_agg(DISTINCT s.site_id) AS sites,
           array_agg(DISTINCT date_trunc('day', u.hour, tz)) AS days,
           array_agg(DISTINCT date_trunc('month', u.hour, tz)) AS months
    FROM unnest(p_site_ids, p_hours) AS u(site_id, hour)
    JOIN site AS s ON s.site_id = u.site_id
    GROUP BY s.city_id
  LOOP
    PERFORM pisman_recompute_tonnage_district(
      c.city_id, c.days, array_agg(s.district_id), array_agg(s.site_type), array_agg(s.process_kind))
    FROM site AS s WHERE s.site_id = ANY (c.sites);
    PERFORM pisman_recompute_tonnage_city(
      c.city_id, c.days, array_agg(s.site_type), array_agg(s.process_kind))
    FROM site AS s WHERE s.site_id = ANY (c.sites);
    PERFORM pisman_recompute_tonnage_site_month(c.city_id, c.months, c.sites);
  END LOOP;
END
$$;

-- A site's district, type or process kind changed (or the site appeared or went): move its
-- weighings' contributions by recomputing, from raw rows, the grain rows of its old and new
-- keys on the days it has weighings. The site-month grain keeps no site attribute.
CREATE FUNCTION pisman_site_regrain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
  sites text[] := '{}';
  cities text[] := '{}';
  districts text[] := '{}';
  types text[] := '{}';
  kinds text[] := '{}';
  c record;
BEGIN
  IF TG_OP <> 'INSERT' THEN
    sites := sites || OLD.site_id;
    cities := cities || OLD.city_id;
    districts := districts || OLD.district_id;
    types := types || OLD.site_type;
    kinds := kinds || OLD.process_kind;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    sites := sites || NEW.site_id;
    cities := cities || NEW.city_id;
    districts := districts || NEW.district_id;
    types := types || NEW.site_type;
    kinds := kinds || NEW.process_kind;
  END IF;
  -- Lock first (every city involved, in order), then read: the recomputation sees every
  -- batch that committed before it and no batch adds to these rows until it commits.
  PERFORM pg_advisory_xact_lock(pisman_tonnage_lock_key(x.city_id))
  FROM (SELECT city_id FROM unnest(cities) AS u(city_id)
        UNION SELECT d.city_id FROM pisman_site_weighing_days(sites) AS d
        ORDER BY 1) AS x;
  FOR c IN
    SELECT d.city_id, array_agg(d.day) AS days
    FROM pisman_site_weighing_days(sites) AS d
    GROUP BY d.city_id
  LOOP
    PERFORM pisman_recompute_tonnage_district(c.city_id, c.days, districts, types, kinds);
    IF TG_OP <> 'UPDATE' OR OLD.site_type IS DISTINCT FROM NEW.site_type
       OR OLD.process_kind IS DISTINCT FROM NEW.process_kind THEN
      PERFORM pisman_recompute_tonnage_city(c.city_id, c.days, types, kinds);
    END IF;
  END LOOP;
  RETURN NULL;
END
$$;

CREATE TRIGGER site_regrain_update AFTER UPDATE ON site
  FOR EACH ROW
  WHEN (OLD.district_id IS DISTINCT FROM NEW.district_id
        OR OLD.site_type IS DISTINCT FROM NEW.site_type
        OR OLD.process_kind IS DISTINCT FROM NEW.process_kind
        OR OLD.site_id IS DISTINCT FROM NEW.site_id)
  EXECUTE FUNCTION pisman_site_regrain();
CREATE TRIGGER site_regrain_insert_delete AFTER INSERT OR DELETE ON site
  FOR EACH ROW EXECUTE FUNCTION pisman_site_regrain();

-- Recompute every grain row in [p_from, p_to) from raw rows, widened to whole local days (the
-- site-month grain to whole local months). Either backend. Returns the rows written per table.
CREATE FUNCTION pisman_rebuild_tonnage_grain(p_from timestamptz, p_to timestamptz)
RETURNS TABLE (table_name text, rows_written bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  tz text := pisman_rollup_timezone();
  day_from timestamptz := date_trunc('day', p_from, tz);
  day_to timestamptz := date_trunc('day', p_to - INTERVAL '1 microsecond', tz) + INTERVAL '24 hours';
  month_from timestamptz := date_trunc('month', p_from, tz);
  month_to timestamptz := (date_trunc('month', p_to - INTERVAL '1 microsecond', tz) AT TIME ZONE tz
                           + INTERVAL '1 month') AT TIME ZONE tz;
  n bigint;
BEGIN
  -- Ingest's upserts take ROW EXCLUSIVE on these tables before their statement's snapshot:
  -- a batch either committed before this (and is read from raw) or waits until it is done.
  LOCK TABLE tonnage_daily_district, tonnage_daily_city, tonnage_monthly_site IN EXCLUSIVE MODE;
  CREATE TEMP TABLE pisman_grain_site_day ON COMMIT DROP AS
  SELECT date_trunc('day', w.ts, tz) AS bucket, w.city_id, w.site_id, w.stream, w.material,
         w.from_own_site, sum(w.net_kg) AS net_kg, count(*) AS weighings,
         count(*) FILTER (WHERE w.manual) AS manual_weighings,
         sum(w.net_kg * w.price_per_kg) AS amount_rp
  FROM weighing AS w
  WHERE w.ts >= least(day_from, month_from) AND w.ts < greatest(day_to, month_to)
  GROUP BY 1, 2, 3, 4, 5, 6;

  DELETE FROM tonnage_daily_district WHERE bucket >= day_from AND bucket < day_to;
  INSERT INTO tonnage_daily_district
    (bucket, city_id, district_id, site_type, process_kind, stream, material, from_own_site,
     net_kg, weighings, manual_weighings, amount_rp)
  SELECT g.bucket, g.city_id, s.district_id, s.site_type, s.process_kind, g.stream, g.material,
         g.from_own_site, sum(g.net_kg), sum(g.weighings), sum(g.manual_weighings), sum(g.amount_rp)
  FROM pisman_grain_site_day AS g JOIN site AS s ON s.site_id = g.site_id
  WHERE g.bucket >= day_from AND g.bucket < day_to
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
  ORDER BY 2, 1, 3, 4, 5, 6, 7, 8;
  GET DIAGNOSTICS n = ROW_COUNT;
  table_name := 'tonnage_daily_district'; rows_written := n; RETURN NEXT;

  DELETE FROM tonnage_daily_city WHERE bucket >= day_from AND bucket < day_to;
  INSERT INTO tonnage_daily_city
    (bucket, city_id, site_type, process_kind, stream, material, from_own_site,
     net_kg, weighings, manual_weighings, amount_rp)
  SELECT g.bucket, g.city_id, s.site_type, s.process_kind, g.stream, g.material,
         g.from_own_site, sum(g.net_kg), sum(g.weighings), sum(g.manual_weighings), sum(g.amount_rp)
  FROM pisman_grain_site_day AS g JOIN site AS s ON s.site_id = g.site_id
  WHERE g.bucket >= day_from AND g.bucket < day_to
  GROUP BY 1, 2, 3, 4, 5, 6, 7
  ORDER BY 2, 1, 3, 4, 5, 6, 7;
  GET DIAGNOSTICS n = ROW_COUNT;
  table_name := 'tonnage_daily_city'; rows_written := n; RETURN NEXT;

  DELETE FROM tonnage_monthly_site WHERE bucket >= month_from AND bucket < month_to;
  INSERT INTO tonnage_monthly_site
    (bucket, city_id, site_id, stream, material, from_own_site,
     net_kg, weighings, manual_weighings, amount_rp, days_mask)
  SELECT date_trunc('month', g.bucket, tz), g.city_id, g.site_id, g.stream, g.material,
         g.from_own_site, sum(g.net_kg), sum(g.weighings), sum(g.manual_weighings), sum(g.amount_rp),
         bit_or(1 << (extract(day FROM g.bucket AT TIME ZONE tz)::int - 1))
  FROM pisman_grain_site_day AS g
  WHERE g.bucket >= month_from AND g.bucket < month_to
  GROUP BY 1, 2, 3, 4, 5, 6
  ORDER BY 2, 1, 3, 4, 5, 6;
  GET DIAGNOSTICS n = ROW_COUNT;
  table_name := 'tonnage_monthly_site'; rows_written := n; RETURN NEXT;
  DROP TABLE pisman_grain_site_day;
END
$$;

-- Plain PostgreSQL's repair of every rollup now covers the grain tables too (the rest of the
-- function is as in 004_rollups.sql).
CREATE OR REPLACE FUNCTION pisman_rebuild_rollups(p_from timestamptz, p_to timestamptz)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tz text := pisman_rollup_timezone();
  day_from timestamptz := date_trunc('day', p_from, tz);
  day_to timestamptz := date_trunc('day', p_to - INTERVAL '1 microsecond', tz) + INTERVAL '24 hours';
BEGIN
  IF pisman_has_timescale() THEN
    RAISE EXCEPTION 'pisman_rebuild_rollups is for plain PostgreSQL; use refresh_continuous_aggregate() and pisman_rebuild_tonnage_grain()';
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

  PERFORM pisman_rebuild_tonnage_grain(p_from, p_to);
END
$$;

-- Rows written into `weighing` other than through ingest: the hourly and daily rollups (plain
-- PostgreSQL; as in 004_rollups.sql) and now the grain tables (both backends). The cities'
-- exclusive locks come first, then the per-site locks: ingest takes them in the same order.
CREATE OR REPLACE FUNCTION pisman_refresh_weighing_rollups(p_site_ids text[], p_hours timestamptz[])
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  tz text := pisman_rollup_timezone();
BEGIN
  PERFORM pisman_recompute_tonnage_for_sites(p_site_ids, p_hours);
  IF pisman_has_timescale() THEN
    RETURN;
  END IF;
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

-- Ingest's write path (as in 004_rollups.sql) now also adds the inserted rows to the grain
-- tables, on both backends, under the cities' shared locks.
CREATE OR REPLACE FUNCTION pisman_insert_staged_weighings()
RETURNS TABLE (device_id text, site_id text, ts timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
  tz text := pisman_rollup_timezone();
BEGIN
  PERFORM pg_advisory_xact_lock_shared(pisman_tonnage_lock_key(c.city_id))
  FROM (SELECT DISTINCT city_id FROM stage_weighing ORDER BY city_id) AS c;
  IF pisman_has_timescale() THEN
    RETURN QUERY
      WITH ins AS (
        INSERT INTO weighing SELECT * FROM stage_weighing
        ON CONFLICT (device_id, ts, seq) DO NOTHING
        RETURNING *
      ), grain_district AS (
        INSERT INTO tonnage_daily_district AS t
          (bucket, city_id, district_id, site_type, process_kind, stream, material, from_own_site,
           net_kg, weighings, manual_weighings, amount_rp)
        SELECT date_trunc('day', i.ts, tz), i.city_id, s.district_id, s.site_type, s.process_kind,
               i.stream, i.material, i.from_own_site,
               sum(i.net_kg), count(*), count(*) FILTER (WHERE i.manual), sum(i.net_kg * i.price_per_kg)
        FROM ins AS i JOIN site AS s ON s.site_id = i.site_id
        GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
        ORDER BY 2, 1, 3, 4, 5, 6, 7, 8  -- one lock order for every writer
        ON CONFLICT (city_id, bucket, district_id, site_type, process_kind, stream, material, from_own_site)
        DO UPDATE SET net_kg = t.net_kg + EXCLUDED.net_kg,
                      weighings = t.weighings + EXCLUDED.weighings,
                      manual_weighings = t.manual_weighings + EXCLUDED.manual_weighings,
                      amount_rp = CASE WHEN t.amount_rp IS NULL THEN EXCLUDED.amount_rp
                                       WHEN EXCLUDED.amount_rp IS NULL THEN t.amount_rp
                                       ELSE t.amount_rp + EXCLUDED.amount_rp END
      ), grain_city AS (
        INSERT INTO tonnage_daily_city AS t
          (bucket, city_id, site_type, process_kind, stream, material, from_own_site,
           net_kg, weighings, manual_weighings, amount_rp)
        SELECT date_trunc('day', i.ts, tz), i.city_id, s.site_type, s.process_kind,
               i.stream, i.material, i.from_own_site,
               sum(i.net_kg), count(*), count(*) FILTER (WHERE i.manual), sum(i.net_kg * i.price_per_kg)
        FROM ins AS i JOIN site AS s ON s.site_id = i.site_id
        GROUP BY 1, 2, 3, 4, 5, 6, 7
        ORDER BY 2, 1, 3, 4, 5, 6, 7
        ON CONFLICT (city_id, bucket, site_type, process_kind, stream, material, from_own_site)
        DO UPDATE SET net_kg = t.net_kg + EXCLUDED.net_kg,
                      weighings = t.weighings + EXCLUDED.weighings,
                      manual_weighings = t.manual_weighings + EXCLUDED.manual_weighings,
                      amount_rp = CASE WHEN t.amount_rp IS NULL THEN EXCLUDED.amount_rp
                                       WHEN EXCLUDED.amount_rp IS NULL THEN t.amount_rp
                                       ELSE t.amount_rp + EXCLUDED.amount_rp END
      ), grain_site_month AS (
        INSERT INTO tonnage_monthly_site AS t
          (bucket, city_id, site_id, stream, material, from_own_site,
           net_kg, weighings, manual_weighings, amount_rp, days_mask)
        SELECT date_trunc('month', i.ts, tz), i.city_id, i.site_id, i.stream, i.material,
               i.from_own_site, sum(i.net_kg), count(*), count(*) FILTER (WHERE i.manual),
               sum(i.net_kg * i.price_per_kg),
               bit_or(1 << (extract(day FROM i.ts AT TIME ZONE tz)::int - 1))
        FROM ins AS i
        GROUP BY 1, 2, 3, 4, 5, 6
        ORDER BY 2, 1, 3, 4, 5, 6
        ON CONFLICT (city_id, bucket, site_id, stream, material, from_own_site)
        DO UPDATE SET net_kg = t.net_kg + EXCLUDED.net_kg,
                      weighings = t.weighings + EXCLUDED.weighings,
                      manual_weighings = t.manual_weighings + EXCLUDED.manual_weighings,
                      amount_rp = CASE WHEN t.amount_rp IS NULL THEN EXCLUDED.amount_rp
                                       WHEN EXCLUDED.amount_rp IS NULL THEN t.amount_rp
                                       ELSE t.amount_rp + EXCLUDED.amount_rp END,
                      days_mask = t.days_mask | EXCLUDED.days_mask
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
    ), grain_district AS (
      INSERT INTO tonnage_daily_district AS t
        (bucket, city_id, district_id, site_type, process_kind, stream, material, from_own_site,
         net_kg, weighings, manual_weighings, amount_rp)
      SELECT date_trunc('day', i.ts, tz), i.city_id, s.district_id, s.site_type, s.process_kind,
             i.stream, i.material, i.from_own_site,
             sum(i.net_kg), count(*), count(*) FILTER (WHERE i.manual), sum(i.net_kg * i.price_per_kg)
      FROM ins AS i JOIN site AS s ON s.site_id = i.site_id
      GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
      ORDER BY 2, 1, 3, 4, 5, 6, 7, 8
      ON CONFLICT (city_id, bucket, district_id, site_type, process_kind, stream, material, from_own_site)
      DO UPDATE SET net_kg = t.net_kg + EXCLUDED.net_kg,
                    weighings = t.weighings + EXCLUDED.weighings,
                    manual_weighings = t.manual_weighings + EXCLUDED.manual_weighings,
                    amount_rp = CASE WHEN t.amount_rp IS NULL THEN EXCLUDED.amount_rp
                                     WHEN EXCLUDED.amount_rp IS NULL THEN t.amount_rp
                                     ELSE t.amount_rp + EXCLUDED.amount_rp END
    ), grain_city AS (
      INSERT INTO tonnage_daily_city AS t
        (bucket, city_id, site_type, process_kind, stream, material, from_own_site,
         net_kg, weighings, manual_weighings, amount_rp)
      SELECT date_trunc('day', i.ts, tz), i.city_id, s.site_type, s.process_kind,
             i.stream, i.material, i.from_own_site,
             sum(i.net_kg), count(*), count(*) FILTER (WHERE i.manual), sum(i.net_kg * i.price_per_kg)
      FROM ins AS i JOIN site AS s ON s.site_id = i.site_id
      GROUP BY 1, 2, 3, 4, 5, 6, 7
      ORDER BY 2, 1, 3, 4, 5, 6, 7
      ON CONFLICT (city_id, bucket, site_type, process_kind, stream, material, from_own_site)
      DO UPDATE SET net_kg = t.net_kg + EXCLUDED.net_kg,
                    weighings = t.weighings + EXCLUDED.weighings,
                    manual_weighings = t.manual_weighings + EXCLUDED.manual_weighings,
                    amount_rp = CASE WHEN t.amount_rp IS NULL THEN EXCLUDED.amount_rp
                                     WHEN EXCLUDED.amount_rp IS NULL THEN t.amount_rp
                                     ELSE t.amount_rp + EXCLUDED.amount_rp END
    ), grain_site_month AS (
      INSERT INTO tonnage_monthly_site AS t
        (bucket, city_id, site_id, stream, material, from_own_site,
         net_kg, weighings, manual_weighings, amount_rp, days_mask)
      SELECT date_trunc('month', i.ts, tz), i.city_id, i.site_id, i.stream, i.material,
             i.from_own_site, sum(i.net_kg), count(*), count(*) FILTER (WHERE i.manual),
             sum(i.net_kg * i.price_per_kg),
             bit_or(1 << (extract(day FROM i.ts AT TIME ZONE tz)::int - 1))
      FROM ins AS i
      GROUP BY 1, 2, 3, 4, 5, 6
      ORDER BY 2, 1, 3, 4, 5, 6
      ON CONFLICT (city_id, bucket, site_id, stream, material, from_own_site)
      DO UPDATE SET net_kg = t.net_kg + EXCLUDED.net_kg,
                    weighings = t.weighings + EXCLUDED.weighings,
                    manual_weighings = t.manual_weighings + EXCLUDED.manual_weighings,
                    amount_rp = CASE WHEN t.amount_rp IS NULL THEN EXCLUDED.amount_rp
                                     WHEN EXCLUDED.amount_rp IS NULL THEN t.amount_rp
                                     ELSE t.amount_rp + EXCLUDED.amount_rp END,
                    days_mask = t.days_mask | EXCLUDED.days_mask
    )
    SELECT ins.device_id, ins.site_id, ins.ts FROM ins;
END
$$;

-- An upgrade: fill the grain tables from the readings already stored (either backend), and
-- say how long it took for how many rows (the migration runner prints these notices).
DO $$
DECLARE
  started timestamptz := clock_timestamp();
  lo timestamptz;
  hi timestamptz;
  n_raw bigint;
  r record;
BEGIN
  SELECT min(ts), max(ts), count(*) INTO lo, hi, n_raw FROM weighing;
  IF lo IS NULL THEN
    RAISE NOTICE 'tonnage grain: no weighings stored yet, nothing to fill';
    RETURN;
  END IF;
  FOR r IN SELECT * FROM pisman_rebuild_tonnage_grain(lo, hi + INTERVAL '1 microsecond') LOOP
    RAISE NOTICE 'filled % with % rows', r.table_name, r.rows_written;
  END LOOP;
  RAISE NOTICE 'tonnage grain: % weighings from % to % read in % s',
    n_raw, lo, hi, round(extract(epoch FROM clock_timestamp() - started)::numeric, 1);
END
$$;

ANALYZE tonnage_daily_district;
ANALYZE tonnage_daily_city;
ANALYZE tonnage_monthly_site;
