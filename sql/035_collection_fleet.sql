-- Collection fleet (issue 12): truck pools, trucks and the figures a collection plan needs,
-- loaded from the city file's `fleet` section by `pisman city load` (docs/collection-planning.md).
-- They live in the database, not only in the file, because the API (which computes every
-- plan) reads a city only from here: one deployment serves several cities, and a planner's
-- edit of a truck's capacity must reach every API worker without a file on its disk.

CREATE TABLE collection_params (
  city_id             text PRIMARY KEY REFERENCES city ON DELETE CASCADE,
  landfill_site_id    text NOT NULL REFERENCES site,
  landfill_open_h     numeric(4, 2) NOT NULL CHECK (landfill_open_h >= 0 AND landfill_open_h < 24),
  landfill_close_h    numeric(4, 2) NOT NULL CHECK (landfill_close_h > landfill_open_h AND landfill_close_h <= 24),
  landfill_unload_min numeric(6, 1) NOT NULL CHECK (landfill_unload_min >= 0),
  service_min         numeric(6, 1) NOT NULL CHECK (service_min >= 0),
  detour_factor       numeric(4, 2) NOT NULL CHECK (detour_factor >= 1),
  speed_kmh           numeric(5, 1) NOT NULL CHECK (speed_kmh > 0),
  -- Where each figure comes from (figure name -> source text), as in the city file.
  sources             jsonb NOT NULL DEFAULT '{}'::jsonb,
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE truck_pool (
  city_id   text NOT NULL REFERENCES city ON DELETE CASCADE,
  pool_id   text NOT NULL CHECK (pool_id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  name      text NOT NULL,
  lat       double precision NOT NULL CHECK (lat BETWEEN -90 AND 90),
  lon       double precision NOT NULL CHECK (lon BETWEEN -180 AND 180),
  districts text[] NOT NULL,
  source    text NOT NULL,
  PRIMARY KEY (city_id, pool_id)
);

CREATE TABLE truck (
  city_id       text NOT NULL,
  truck_id      text NOT NULL CHECK (truck_id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
  pool_id       text NOT NULL,
  capacity_kg   integer NOT NULL CHECK (capacity_kg > 0),
  shift_start_h numeric(4, 2) NOT NULL CHECK (shift_start_h >= 0 AND shift_start_h < 24),
  shift_end_h   numeric(4, 2) NOT NULL CHECK (shift_end_h > shift_start_h AND shift_end_h <= 24),
  source        text NOT NULL,
  PRIMARY KEY (city_id, truck_id),
  FOREIGN KEY (city_id, pool_id) REFERENCES truck_pool ON DELETE CASCADE
);
