"""The default category rules: the simulator's restatement equals the SQL seed for every
combination, and depot sales to recyclers are utilize (national B) in the API's numbers."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import psycopg

from pisman import citydata
from pisman.settings import PROJECT_ROOT
from simulators.behaviour import HOUR_MS, CitySimulation
from simulators.categories import classify
from simulators.devices import city_devices
from tests.support.api_seed import Weighing, api_client, insert_weighings, seed_city


def test_simulator_rules_equal_the_sql_defaults_for_every_combination(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO city (city_id, name) VALUES ('cimahi', 'Kota Cimahi')")
        combos = conn.execute(
            "SELECT st.code, s.code, m.code, o.own FROM site_type st CROSS JOIN stream s"
            " CROSS JOIN material m CROSS JOIN (VALUES (false), (true)) AS o(own)"
        ).fetchall()
        rules = {
            (st, stream, mat, own): (cat, sign, collected, separated)
            for st, stream, mat, own, cat, sign, collected, separated in conn.execute(
                "SELECT site_type, stream, material, from_own_site, category, sign, collected,"
                " separated FROM category_map WHERE city_id = 'cimahi'"
            )
        }
    assert rules[("depot", "to_recycler", "plastic", False)][:2] == ("utilize", 1)
    for st, stream, mat, own in combos:
        cat, sign, collected, separated = rules.get((st, stream, mat, own), (None, 1, False, False))
        c = classify(st, stream, mat, own, 1000)
        fates = {"reduce": c.reduce, "utilize": c.utilize, "residual": c.residual}
        expected = {k: (1000 * sign if k == cat else 0) for k in fates}
        assert fates == expected, (st, stream, mat, own)
        assert (c.collected == 1000, c.separate == 1000) == (collected, separated), (
            st,
            stream,
            mat,
            own,
        )


def test_depot_sales_to_recyclers_count_as_utilize_and_national_b(db_url, monkeypatch) -> None:
    ts = datetime.fromisoformat("2026-05-10T03:00:00+00:00")
    rows = [
        Weighing(ts, "tps-coblong", 1, Decimal("120.5"), "plastic", "to_recycler"),
        Weighing(ts, "tps-cicendo", 2, Decimal("80.5"), "metal", "to_recycler"),
        Weighing(ts, "tpa-gate", 3, Decimal("5000"), "mixed", "to_landfill"),
    ]
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        insert_weighings(conn, rows)
    sold_kg = sum(w.net_kg for w in rows if w.stream == "to_recycler")
    with api_client(db_url, monkeypatch, role="planner") as (client, _):
        ton = client.get(
            "/v1/tonnage",
            params={"from": "2026-05-01", "to": "2026-06-01", "bucket": "total"},
        ).json()
        rep = client.get("/v1/reports/national", params={"month": "2026-05"}).json()
    totals = {t["category"]: t["tonnes"] for t in ton["totals"]}
    assert totals["utilize"] == float(sold_kg / 1000)
    assert rep["B_t"] == float(sold_kg / 1000)
    assert rep["C_t"] == 5.0


def test_simulated_depots_sell_to_recyclers_and_the_simulator_counts_it_as_utilize() -> None:
    city = citydata.read_city_file(PROJECT_ROOT / "data" / "cities" / "testville.yaml")
    sim = CitySimulation(city, city_devices(city), seed=1, bin_interval_s=300)
    end_ms = 1_793_466_000_000  # 2026-10-31T17:00:00Z, midnight in Jakarta
    site_type = {s.id: s.type for s in city.sites}
    sales = [
        r
        for h in range(48, 0, -1)
        for r in sim.hour(end_ms - h * HOUR_MS)
        if r.fields.get("stream") == "to_recycler"
    ]
    assert sales and {site_type[r.device.site_id] for r in sales} == {"depot"}
    for r in sales:
        c = classify("depot", "to_recycler", r.fields["material"], False, r.net_g)
        assert (c.utilize, c.reduce, c.residual, c.collected) == (r.net_g, 0, 0, 0)
