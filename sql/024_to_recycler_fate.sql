-- Materials a depot (TPS) sells to recyclers (stream to_recycler: the informal pelapak and
-- pemulung trade) are utilize, national B (recycling): they leave the city's system as a
-- product and never reach the landfill. Until now no category_map row mapped them, so they
-- counted nowhere. Like every rule, the row is a default: change it per city with UPDATE.
--
-- The rule is added to the seed function every new city runs (CREATE OR REPLACE; the rest of
-- the function is as in 003_category_map.sql), and written for every existing city.
-- A load a depot sends on from one of the city's own sites (from_own_site) is still sold
-- only once, at the depot that weighs it leaving: both flags map.

CREATE OR REPLACE FUNCTION pisman_seed_category_map(p_city_id text) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
  n integer;
BEGIN
  INSERT INTO category_map (city_id, site_type, stream, material, from_own_site,
                            category, sign, national_term, collected, separated)
  SELECT p_city_id, r.site_type, r.stream, r.material, r.from_own_site,
         r.category, r.sign, CASE WHEN r.category IS NULL THEN NULL WHEN r.category = 'residual' THEN 'C' ELSE 'B' END,
         r.collected, r.separated
  FROM (
    SELECT st.code AS site_type, s.code AS stream, m.code AS material, o.own AS from_own_site,
      CASE
        -- Waste banks: a member's deposit is diverted at source. A central bank's receipt
        -- from a unit bank is an internal transfer, already counted at the unit bank.
        WHEN st.code IN ('waste_bank', 'waste_bank_hub') AND s.code = 'deposit' AND NOT o.own THEN 'reduce'
        -- Facilities: what goes in is utilized, minus the residue sent on to landfill.
        WHEN st.code = 'processing' AND s.code = 'to_processing' THEN 'utilize'
        WHEN st.code = 'processing' AND s.code = 'to_landfill' THEN 'utilize'
        -- Depots: materials picked out and sold to recyclers (pelapak) are recycled.
        WHEN st.code = 'depot' AND s.code = 'to_recycler' THEN 'utilize'
        -- Landfill gate: net tonnage dumped.
        WHEN st.code = 'landfill' AND s.code = 'to_landfill' THEN 'residual'
      END AS category,
      CASE WHEN st.code = 'processing' AND s.code = 'to_landfill' THEN -1 ELSE 1 END AS sign,
      -- Collected tonnage: first arrival in the city's system (not a transfer between own sites).
      (NOT o.own AND (
         (st.code IN ('waste_bank', 'waste_bank_hub') AND s.code = 'deposit')
         OR (st.code = 'depot' AND s.code IN ('separated', 'mixed'))
         OR (st.code = 'processing' AND s.code = 'to_processing')
         OR (st.code = 'landfill' AND s.code = 'to_landfill'))) AS collected,
      (NOT o.own AND m.code <> 'mixed' AND (
         (st.code IN ('waste_bank', 'waste_bank_hub') AND s.code = 'deposit')
         OR (st.code = 'depot' AND s.code = 'separated')
         OR (st.code = 'processing' AND s.code = 'to_processing'))) AS separated
    FROM site_type st
    CROSS JOIN stream s
    CROSS JOIN material m
    CROSS JOIN (VALUES (false), (true)) AS o(own)
  ) AS r
  WHERE r.category IS NOT NULL OR r.collected OR r.separated
  ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END
$$;

-- Existing cities: the new default rows only; a row a city already set is left as it is.
INSERT INTO category_map (city_id, site_type, stream, material, from_own_site,
                          category, sign, national_term, collected, separated)
SELECT c.city_id, 'depot', 'to_recycler', m.code, o.own, 'utilize', 1, 'B', false, false
FROM city c
CROSS JOIN material m
CROSS JOIN (VALUES (false), (true)) AS o(own)
ON CONFLICT DO NOTHING;
