-- Acknowledged alerts (issue 14): who saw an alert of GET /v1/alerts and when. An alert's id
-- names one occurrence (city, kind, device or site, and when it began: api/routes/alerts.py), so
-- an acknowledgement covers that occurrence only and the next one alerts again. The first
-- acknowledgement is kept; acknowledging again changes nothing. Rows stay as the record of who
-- acted on what.
CREATE TABLE alert_ack (
  city_id              text NOT NULL REFERENCES city ON DELETE CASCADE,
  alert_id             text NOT NULL CHECK (length(alert_id) BETWEEN 1 AND 200),
  kind                 text NOT NULL,
  acknowledged_by      text NOT NULL,             -- a username, or an API key's label
  acknowledged_by_name text NOT NULL,             -- the user's display name (a key: its label)
  acknowledged_at      timestamptz NOT NULL DEFAULT now(),
  note                 text CHECK (length(note) <= 500),
  PRIMARY KEY (city_id, alert_id)
);
CREATE INDEX alert_ack_city_time ON alert_ack (city_id, acknowledged_at);
