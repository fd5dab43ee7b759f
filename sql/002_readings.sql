-- Readings: weighings and bin readings (time series), device state, quarantine.
--
-- Re-delivery is harmless: (device_id, ts, seq) is unique, and ingest inserts with
-- ON CONFLICT DO NOTHING. The time column is part of the key because TimescaleDB requires
-- every unique index of a hypertable to include it.

CREATE TABLE weighing (
  ts             timestamptz NOT NULL,          -- the device's own timestamp (UTC)
  city_id        text NOT NULL,
  site_id        text NOT NULL,
  device_id      text NOT NULL,
  seq            bigint NOT NULL CHECK (seq >= 0),
  received_at    timestamptz NOT NULL DEFAULT now(),
  net_kg         numeric(12, 3) NOT NULL CHECK (net_kg >= 0 AND net_kg <= 60000),
  gross_kg       numeric(12, 3) CHECK (gross_kg >= 0),
  tare_kg        numeric(12, 3) CHECK (tare_kg >= 0),
  material       text NOT NULL,
  stream         text NOT NULL,
  vehicle_plate  text,
  origin_site_id text,                          -- where the load came from, if known
  from_own_site  boolean NOT NULL DEFAULT false, -- origin is one of this city's sites: an internal transfer
  price_per_kg   numeric(12, 2) CHECK (price_per_kg >= 0),
  manual         boolean NOT NULL DEFAULT false, -- hand-typed ticket (scale failed)
  CONSTRAINT weighing_dedupe UNIQUE (device_id, ts, seq)
);

CREATE TABLE bin_reading (
  ts            timestamptz NOT NULL,
  city_id       text NOT NULL,
  site_id       text NOT NULL,
  device_id     text NOT NULL,
  seq           bigint NOT NULL CHECK (seq >= 0),
  received_at   timestamptz NOT NULL DEFAULT now(),
  fill_ratio    numeric(5, 4) NOT NULL CHECK (fill_ratio >= 0 AND fill_ratio <= 1),
  battery_pct   numeric(5, 2) CHECK (battery_pct >= 0 AND battery_pct <= 100),
  temperature_c numeric(5, 2),
  tilt          boolean NOT NULL DEFAULT false,
  fire          boolean NOT NULL DEFAULT false,
  lid_open      boolean NOT NULL DEFAULT false,
  CONSTRAINT bin_reading_dedupe UNIQUE (device_id, ts, seq)
);

DO $$
BEGIN
  IF pisman_has_timescale() THEN
    EXECUTE $ts$
      SELECT create_hypertable('weighing', by_range('ts', INTERVAL '7 days'), if_not_exists => true)
    $ts$;
    EXECUTE $ts$
      SELECT create_hypertable('bin_reading', by_range('ts', INTERVAL '1 day'), if_not_exists => true)
    $ts$;
    EXECUTE $ts$
      ALTER TABLE weighing SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts')
    $ts$;
    EXECUTE $ts$
      ALTER TABLE bin_reading SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id', timescaledb.compress_orderby = 'ts')
    $ts$;
    -- Late data (devices flushing a backlog) arrives within days; compress well after that.
    EXECUTE $ts$
      SELECT add_compression_policy('weighing', compress_after => INTERVAL '7 days')
    $ts$;
    EXECUTE $ts$
      SELECT add_compression_policy('bin_reading', compress_after => INTERVAL '7 days')
    $ts$;
  ELSE
    -- Plain PostgreSQL: append-mostly tables in time order, so BRIN on ts is tiny and effective.
    CREATE INDEX weighing_ts_brin ON weighing USING brin (ts);
    CREATE INDEX bin_reading_ts_brin ON bin_reading USING brin (ts);
  END IF;
END
$$;

-- Both paths: the rollup refresh recomputes (site, hour) buckets from raw rows.
CREATE INDEX weighing_site_ts_idx ON weighing (site_id, ts);
CREATE INDEX bin_reading_site_ts_idx ON bin_reading (site_id, ts);

-- Latest known state per device, upserted by ingest once per batch (not per reading).
CREATE TABLE device_state (
  device_id             text PRIMARY KEY REFERENCES device ON DELETE CASCADE,
  city_id               text NOT NULL,
  last_seen_at          timestamptz,   -- when ingest last received anything from it
  last_reading_ts       timestamptz,   -- newest device timestamp stored
  last_seq              bigint,
  connection            text CHECK (connection IN ('online', 'offline')),
  connection_changed_at timestamptz,
  battery_pct           numeric(5, 2),
  fill_ratio            numeric(5, 4),
  readings_total        bigint NOT NULL DEFAULT 0,
  duplicates_total      bigint NOT NULL DEFAULT 0
);

-- Bad payloads are kept with the reason, never silently dropped.
CREATE TABLE quarantine (
  quarantine_id bigserial PRIMARY KEY,
  city_id       text,        -- NULL when the topic names no known site
  received_at   timestamptz NOT NULL DEFAULT now(),
  topic         text NOT NULL,
  payload       bytea NOT NULL,
  reason        text NOT NULL,
  site_id       text,
  device_id     text,
  kind          text,
  status        text NOT NULL DEFAULT 'new' CHECK (status IN ('new', 'retry', 'reprocessed', 'discarded')),
  resolved_at   timestamptz,
  resolution    text
);
CREATE INDEX quarantine_received_idx ON quarantine (received_at);
CREATE INDEX quarantine_city_status_idx ON quarantine (city_id, status, received_at);
