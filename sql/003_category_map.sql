-- From flows to Kang PisMan categories: each weighed tonne is counted once, by its fate.
--
-- One row per (city, site type, stream, material, from_own_site): an explicit table, so an
-- edit is a plain UPDATE and a lookup is an equi-join. Rows that are absent count nowhere.
--   category       reduce | utilize | residual | NULL (not a fate: an internal move or a product)
--   sign           +1, or -1 for what leaves a facility as residue (utilize = input - residue)
--   national_term  'B' (reduction) or 'C' (handling) in the national report
--   collected      counts in collected tonnage (the denominator of the separated share)
--   separated      arrived already separated (the "pisahkan" process measure)
-- Default rules are written for each new city by pisman_seed_category_map(); change them
-- per city with UPDATE (for example, make processing count toward C).

CREATE TABLE category_map (
  city_id       text NOT NULL REFERENCES city ON DELETE CASCADE,
  site_type     text NOT NULL REFERENCES site_type,
  stream        text NOT NULL REFERENCES stream,
  material      text NOT NULL REFERENCES material,
  from_own_site boolean NOT NULL,
  category      text REFERENCES category CHECK (category IS DISTINCT FROM 'separate'),
  sign          smallint NOT NULL DEFAULT 1 CHECK (sign IN (-1, 1)),
  national_term text CHECK (national_term IN ('B', 'C')),
  collected     boolean NOT NULL DEFAULT false,
  separated     boolean NOT NULL DEFAULT false,
  PRIMARY KEY (city_id, site_type, stream, material, from_own_site),
  CHECK ((category IS NULL) = (national_term IS NULL))
);

CREATE FUNCTION pisman_seed_category_map(p_city_id text) RETURNS integer
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

CREATE FUNCTION pisman_city_seed_category_map() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pisman_seed_category_map(NEW.city_id);
  RETURN NEW;
END
$$;

CREATE TRIGGER city_seed_category_map
AFTER INSERT ON city
FOR EACH ROW EXECUTE FUNCTION pisman_city_seed_category_map();
