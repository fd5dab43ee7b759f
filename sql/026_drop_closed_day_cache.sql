-- The API no longer caches closed days per process (sql/021): it reads the tonnage grain tables
-- (025_tonnage_grain.sql), which are exact at commit and small enough to read cold on both
-- backends. Writes stop paying for the cache's version counters.

DO $$
BEGIN
  IF NOT pisman_has_timescale() THEN
    DROP TRIGGER api_closed_days_insert ON weighing_daily;
    DROP TRIGGER api_closed_days_update ON weighing_daily;
    DROP TRIGGER api_closed_days_delete ON weighing_daily;
    DROP TRIGGER api_closed_days_truncate ON weighing_daily;
  END IF;
END
$$;

DROP TRIGGER api_tonnage_reference_site ON site;
DROP TRIGGER api_tonnage_reference_district ON district;
DROP TRIGGER api_tonnage_reference_category_map ON category_map;
DROP FUNCTION api_bump_closed_days();
DROP FUNCTION api_bump_tonnage_reference();
DROP TABLE api_closed_day_version;
DROP TABLE api_tonnage_reference;
