-- A city's declared hourly profile (issue 14): the share of a day's tonnage weighed in each local
-- hour, relative factors for hours 0..23 with the document they come from. The overview's pace
-- ("expected by now") comes from the city's own history (the same weekday of the last four
-- weeks, api/queries/pace.py); this profile stands in while that history is too short. Written
-- by `pisman city load` from the city file's `pace_profile` (or, without one, its
-- `simulation.hourly_profile`): the API serves several cities and reads no city file.
CREATE TABLE city_pace_profile (
  city_id    text PRIMARY KEY REFERENCES city ON DELETE CASCADE,
  hourly     numeric[] NOT NULL
    CHECK (cardinality(hourly) = 24 AND array_ndims(hourly) = 1 AND 0 <= ALL (hourly)
           AND array_position(hourly, NULL) IS NULL
           AND hourly <> array_fill(0::numeric, ARRAY[24])),
  source     text NOT NULL CHECK (length(source) >= 3),
  updated_at timestamptz NOT NULL DEFAULT now()
);
