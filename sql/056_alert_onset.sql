-- When each ongoing bin condition of an alert began (issue 14), remembered by the API
-- (api/queries/alert_onsets.py). The start of a run is found by walking back through the bin's
-- readings to the last one without the condition: for a battery low for weeks that is
-- thousands of readings per bin on every GET /v1/alerts. Remembered with the newest reading
-- known to continue the run (`through`), the next request only checks the readings after it;
-- a reading that ends the run makes the API find the start afresh and replace the row.
CREATE TABLE alert_onset (
  device_id text NOT NULL REFERENCES device ON DELETE CASCADE,
  city_id   text NOT NULL REFERENCES city ON DELETE CASCADE,
  condition text NOT NULL CHECK (condition IN ('fire', 'tilt', 'lid_open', 'full', 'battery_low', 'battery_critical')),
  since     timestamptz NOT NULL,
  through   timestamptz NOT NULL CHECK (through >= since),
  PRIMARY KEY (device_id, condition)
);
