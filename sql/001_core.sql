-- Core schema: deployment metadata, TimescaleDB detection, vocabulary, cities, places, devices, targets.
--
-- TimescaleDB is optional. It is used only when the extension is available AND preloaded
-- (CREATE EXTENSION without the preload fails with FATAL and drops the connection, so we
-- never "try and catch" it). Every TimescaleDB-only statement in later files sits inside
--   IF pisman_has_timescale() THEN EXECUTE $ts$ ... $ts$; ELSE <plain PostgreSQL> END IF;
-- and tests/test_sql_guards.py fails if one does not.
--
-- The migration runner sets two transaction-local settings before each file:
--   pisman.timezone   the zone daily rollups are bucketed in (PISMAN_TIMEZONE)
--   pisman.timescale  'auto' or 'off' (PISMAN_TIMESCALE)

DO $$
BEGIN
  IF coalesce(nullif(current_setting('pisman.timescale', true), ''), 'auto') <> 'off'
     AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
     AND (current_setting('shared_preload_libraries', true) LIKE '%timescaledb%'
          OR EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')) THEN
    CREATE EXTENSION IF NOT EXISTS timescaledb;
  END IF;
END
$$;

CREATE FUNCTION pisman_has_timescale() RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
$$;

-- Facts fixed when the schema was first built; rollups depend on them.
CREATE TABLE pisman_meta (
  key   text PRIMARY KEY,
  value text NOT NULL
);
INSERT INTO pisman_meta (key, value) VALUES
  ('rollup_timezone', coalesce(nullif(current_setting('pisman.timezone', true), ''), 'Asia/Jakarta')),
  ('storage', CASE WHEN pisman_has_timescale() THEN 'timescaledb' ELSE 'postgresql' END);

-- The zone must be one PostgreSQL knows; fail the migration rather than bucket days wrongly.
DO $$
BEGIN
  PERFORM now() AT TIME ZONE (SELECT value FROM pisman_meta WHERE key = 'rollup_timezone');
END
$$;

CREATE FUNCTION pisman_rollup_timezone() RETURNS text
LANGUAGE sql STABLE AS $$
  SELECT value FROM pisman_meta WHERE key = 'rollup_timezone'
$$;

-- Vocabulary (mirrors pisman/domain.py; tests/test_domain_vocabulary.py keeps them equal).
CREATE TABLE site_type (
  code     text PRIMARY KEY,
  label_id text NOT NULL,
  label_en text NOT NULL
);
INSERT INTO site_type VALUES
  ('waste_bank', 'Bank sampah unit', 'Waste bank'),
  ('waste_bank_hub', 'Bank sampah induk', 'Central waste bank'),
  ('depot', 'TPS', 'Depot'),
  ('processing', 'TPS3R / TPST', 'Processing facility'),
  ('landfill', 'TPA', 'Landfill gate');

CREATE TABLE process_kind (
  code           text PRIMARY KEY,
  label_id       text NOT NULL,
  label_en       text NOT NULL,
  -- national reporting: D = recycled, E = used as raw material
  recycling_term text NOT NULL CHECK (recycling_term IN ('D', 'E'))
);
INSERT INTO process_kind VALUES
  ('compost', 'Pengomposan', 'Composting', 'E'),
  ('larvae', 'Maggot (BSF)', 'Black soldier fly larvae', 'E'),
  ('biodigester', 'Biodigester', 'Biodigester', 'E'),
  ('recycling', 'Daur ulang', 'Recycling', 'D'),
  ('rdf', 'RDF', 'Refuse-derived fuel', 'E');

CREATE TABLE material (
  code     text PRIMARY KEY,
  label_id text NOT NULL,
  label_en text NOT NULL,
  organic  boolean NOT NULL DEFAULT false
);
INSERT INTO material VALUES
  ('food', 'Sisa makanan', 'Food waste', true),
  ('plastic', 'Plastik', 'Plastic', false),
  ('wood', 'Kayu/ranting', 'Wood/twigs', true),
  ('paper', 'Kertas/karton', 'Paper/cardboard', false),
  ('metal', 'Logam', 'Metal', false),
  ('textile', 'Kain', 'Textile', false),
  ('glass', 'Kaca', 'Glass', false),
  ('rubber', 'Karet/kulit', 'Rubber/leather', false),
  ('other', 'Lainnya', 'Other', false),
  ('hazardous', 'B3 (berbahaya)', 'Hazardous', false),
  ('residual', 'Residu', 'Residual', false),
  ('mixed', 'Campuran', 'Mixed', false);

CREATE TABLE stream (
  code     text PRIMARY KEY,
  label_id text NOT NULL,
  label_en text NOT NULL
);
INSERT INTO stream VALUES
  ('deposit', 'Setoran', 'Deposit'),
  ('separated', 'Terpilah', 'Separated'),
  ('mixed', 'Tercampur', 'Mixed'),
  ('to_processing', 'Ke pengolahan', 'To processing'),
  ('processed_output', 'Hasil olahan', 'Processed output'),
  ('to_recycler', 'Ke pendaur ulang', 'To recycler'),
  ('to_landfill', 'Ke TPA', 'To landfill');

CREATE TABLE category (
  code     text PRIMARY KEY,
  label_id text NOT NULL,
  label_en text NOT NULL
);
INSERT INTO category VALUES
  ('reduce', 'Kurangi', 'Reduce'),
  ('separate', 'Pisahkan', 'Separate'),
  ('utilize', 'Manfaatkan', 'Utilize'),
  ('residual', 'Residu ke TPA', 'Residual to landfill');

CREATE TABLE device_kind (
  code     text PRIMARY KEY,
  label_id text NOT NULL,
  label_en text NOT NULL
);
INSERT INTO device_kind VALUES
  ('weighbridge', 'Jembatan timbang', 'Weighbridge'),
  ('platform_scale', 'Timbangan', 'Platform scale'),
  ('bin_sensor', 'Sensor kontainer', 'Bin fill sensor');

CREATE TABLE target_metric (
  code     text PRIMARY KEY,
  label_id text NOT NULL,
  label_en text NOT NULL,
  unit     text NOT NULL
);
INSERT INTO target_metric VALUES
  ('generation_t', 'Timbulan sampah', 'Waste generated', 't'),
  ('reduce_t', 'Pengurangan', 'Reduced', 't'),
  ('separate_share', 'Porsi terpilah', 'Share separated', 'ratio'),
  ('utilize_t', 'Pemanfaatan', 'Utilized', 't'),
  ('residual_t', 'Residu ke TPA', 'Residual to landfill', 't'),
  ('reduction_share', 'Capaian pengurangan (B/A)', 'Reduction share (B/A)', 'ratio'),
  ('handling_share', 'Capaian penanganan (C/A)', 'Handling share (C/A)', 'ratio'),
  ('landfill_quota_t', 'Kuota TPA', 'Landfill quota', 't'),
  ('kbs_rw', 'RW Kawasan Bebas Sampah', 'Waste-free neighbourhoods (KBS)', 'count');

-- Places.
CREATE TABLE city (
  city_id            text PRIMARY KEY CHECK (city_id ~ '^[a-z0-9][a-z0-9_-]{0,39}$'),
  name               text NOT NULL,
  province           text,
  timezone           text NOT NULL DEFAULT 'Asia/Jakarta',
  bin_full_threshold numeric(4, 3) NOT NULL DEFAULT 0.800 CHECK (bin_full_threshold > 0 AND bin_full_threshold <= 1),
  created_at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE district (
  city_id     text NOT NULL REFERENCES city ON DELETE CASCADE,
  district_id text NOT NULL CHECK (district_id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  name        text NOT NULL,
  PRIMARY KEY (city_id, district_id)
);

-- Neighbourhoods (RW); a Kawasan Bebas Sampah (KBS) has at least 30 % of households separating.
CREATE TABLE neighbourhood (
  city_id               text NOT NULL,
  district_id           text NOT NULL,
  kelurahan             text NOT NULL,
  rw                    text NOT NULL,
  households            integer CHECK (households >= 0),
  separating_households integer CHECK (separating_households >= 0),
  kbs_since             date,
  PRIMARY KEY (city_id, district_id, kelurahan, rw),
  FOREIGN KEY (city_id, district_id) REFERENCES district ON DELETE CASCADE
);

CREATE TABLE site (
  site_id            text PRIMARY KEY CHECK (site_id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  city_id            text NOT NULL REFERENCES city ON DELETE CASCADE,
  district_id        text NOT NULL,
  kelurahan          text,
  rw                 text,
  name               text NOT NULL,
  site_type          text NOT NULL REFERENCES site_type,
  process_kind       text REFERENCES process_kind,
  lat                double precision CHECK (lat BETWEEN -90 AND 90),
  lon                double precision CHECK (lon BETWEEN -180 AND 180),
  capacity_t_per_day numeric(10, 3),
  active             boolean NOT NULL DEFAULT true,
  created_at         timestamptz NOT NULL DEFAULT now(),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (city_id, district_id) REFERENCES district,
  CHECK ((site_type = 'processing') = (process_kind IS NOT NULL))
);
CREATE INDEX site_city_district_idx ON site (city_id, district_id);

CREATE TABLE device (
  device_id            text PRIMARY KEY CHECK (device_id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  city_id              text NOT NULL REFERENCES city ON DELETE CASCADE,
  site_id              text NOT NULL REFERENCES site,
  kind                 text NOT NULL REFERENCES device_kind,
  -- Mosquitto's own PBKDF2-SHA512 format ($7$...), so the broker's password file is generated
  -- from this column and no plain password is ever stored.
  password_hash        text NOT NULL,
  reporting_interval_s integer NOT NULL DEFAULT 300 CHECK (reporting_interval_s > 0),
  full_threshold       numeric(4, 3) CHECK (full_threshold > 0 AND full_threshold <= 1),
  active               boolean NOT NULL DEFAULT true,
  created_at           timestamptz NOT NULL DEFAULT now(),
  credentials_set_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX device_site_idx ON device (site_id);
CREATE INDEX device_city_kind_idx ON device (city_id, kind);

-- Targets are configuration (per city, metric and period, with their source document).
CREATE TABLE target (
  city_id    text NOT NULL REFERENCES city ON DELETE CASCADE,
  metric     text NOT NULL REFERENCES target_metric,
  period     interval NOT NULL,
  value      numeric NOT NULL CHECK (value >= 0),
  valid_from date NOT NULL DEFAULT DATE '2000-01-01',
  valid_to   date,
  source     text NOT NULL,
  PRIMARY KEY (city_id, metric, valid_from),
  CHECK (valid_to IS NULL OR valid_to > valid_from)
);

-- Broker accounts that are not devices: the ingest service (reads every topic), gateways
-- (publish for many devices, as the simulators do) and monitors (connect to check health).
CREATE TABLE service_account (
  username      text PRIMARY KEY CHECK (username ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  city_id       text REFERENCES city ON DELETE CASCADE, -- NULL: every city
  role          text NOT NULL CHECK (role IN ('ingest', 'gateway', 'monitor')),
  password_hash text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now()
);

-- API keys: only a SHA-256 of the secret is stored; key_id is the public prefix shown in logs.
CREATE TABLE api_key (
  key_id       text PRIMARY KEY,
  city_id      text REFERENCES city ON DELETE CASCADE, -- NULL: every city of the deployment
  name         text NOT NULL,
  role         text NOT NULL CHECK (role IN ('viewer', 'planner', 'admin')),
  secret_hash  text NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  revoked_at   timestamptz
);
