-- API: covering index for the tonnage query (api/queries/tonnage.py), so a month of
-- weighing_daily is read by an index-only scan in bucket order, whatever order the rollup
-- rows were written in. Plain PostgreSQL only: with TimescaleDB weighing_daily is a
-- continuous aggregate whose own indexes serve the same scan.
DO $$
BEGIN
  IF NOT pisman_has_timescale() THEN
    CREATE INDEX weighing_daily_api_tonnage_idx ON weighing_daily (city_id, bucket)
      INCLUDE (site_id, material, stream, from_own_site, net_kg, weighings, manual_weighings, amount_rp);
  END IF;
END
$$;
