-- District outlines (issue 14): one row per district that has an area on the map, from the GeoJSON
-- a city file names under `boundaries` (docs/city-data.md). Stored here, not read from files by
-- the API: one API serves every city of a deployment and has no city files. `pisman city load`
-- replaces a city's rows with the file's (pisman/citydata.py); the geometry was checked by
-- pisman/geo.py (closed rings, WGS84 ranges, one feature per district) before it gets here.
CREATE TABLE district_boundary (
  city_id     text NOT NULL REFERENCES city ON DELETE CASCADE,
  district_id text NOT NULL,
  -- A GeoJSON MultiPolygon geometry object, positions [longitude, latitude] in WGS84.
  geometry    jsonb NOT NULL CHECK (geometry->>'type' = 'MultiPolygon'
                                    AND jsonb_typeof(geometry->'coordinates') = 'array'),
  -- The bounding box, so a map can be framed without reading every outline.
  min_lon     double precision NOT NULL CHECK (min_lon BETWEEN -180 AND 180),
  min_lat     double precision NOT NULL CHECK (min_lat BETWEEN -90 AND 90),
  max_lon     double precision NOT NULL CHECK (max_lon BETWEEN -180 AND 180),
  max_lat     double precision NOT NULL CHECK (max_lat BETWEEN -90 AND 90),
  source      text NOT NULL CHECK (length(source) >= 3),
  loaded_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (city_id, district_id),
  FOREIGN KEY (city_id, district_id) REFERENCES district ON DELETE CASCADE,
  CHECK (min_lon <= max_lon AND min_lat <= max_lat)
);
