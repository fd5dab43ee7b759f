"""Tonnage endpoint: numbers equal pandas over the raw rows the test inserted, per WIB day, late data included."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal

import pandas as pd
import psycopg
import pytest

from tests.support.api_seed import (
    SITES,
    Weighing,
    api_client,
    insert_weighings,
    random_weighings,
    seed_city,
)

SITE_TYPE = {s[0]: s[2] for s in SITES}
SITE_DISTRICT = {s[0]: s[1] for s in SITES}
START = datetime.fromisoformat("2026-02-26T12:00:00+00:00")


def expected_frame(rows: list[Weighing]) -> pd.DataFrame:
    """Category rows per raw weighing, from the rules in DOMAIN.md restated here (not read from SQL)."""
    records = []
    for w in rows:
        stype = SITE_TYPE[w.site_id]
        kg = w.net_kg
        fate = None
        sign = 1
        if (
            stype in ("waste_bank", "waste_bank_hub")
            and w.stream == "deposit"
            and not w.from_own_site
        ):
            fate = "reduce"
        elif stype == "processing" and w.stream == "to_processing":
            fate = "utilize"
        elif stype == "processing" and w.stream == "to_landfill":
            fate, sign = "utilize", -1
        elif stype == "landfill" and w.stream == "to_landfill":
            fate = "residual"
        local_day = (w.ts + timedelta(hours=7)).date()
        base = {
            "day": pd.Timestamp(local_day),
            "district": SITE_DISTRICT[w.site_id],
            "site": w.site_id,
            "material": w.material,
            "site_type": stype,
        }
        if fate:
            records.append({**base, "category": fate, "kg": float(kg) * sign})
        separated = (
            not w.from_own_site
            and w.material != "mixed"
            and (
                (stype in ("waste_bank", "waste_bank_hub") and w.stream == "deposit")
                or (stype == "depot" and w.stream == "separated")
                or (stype == "processing" and w.stream == "to_processing")
            )
        )
        if separated:
            records.append({**base, "category": "separate", "kg": float(kg)})
    return pd.DataFrame.from_records(records)


@pytest.fixture
def seeded(db_url: str) -> tuple[str, list[Weighing]]:
    rows = random_weighings(random.Random(7), START, 24 * 5, 6)
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        insert_weighings(conn, rows)
    return db_url, rows


@pytest.fixture(scope="module")
def city_db(module_db_url: str) -> str:
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
    return module_db_url


def _api_frame(body: dict) -> pd.DataFrame:
    return pd.DataFrame.from_records(body["rows"])


def test_daily_tonnage_by_category_equals_pandas_over_raw_rows_including_late_data(
    seeded, monkeypatch
):
    db_url, rows = seeded
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        first = client.get(
            "/v1/tonnage", params={"from": "2026-02-27", "to": "2026-03-03", "group_by": "category"}
        )
        assert first.status_code == 200, first.text
        # Late data: a backlog arrives after the first query, on both sides of 17:00 UTC (00:00 WIB).
        late = [
            Weighing(
                datetime.fromisoformat("2026-02-28T16:59:59+00:00"),
                "tpa-gate",
                90001,
                Decimal("7000.5"),
                "mixed",
                "to_landfill",
            ),
            Weighing(
                datetime.fromisoformat("2026-02-28T17:00:00+00:00"),
                "tpa-gate",
                90002,
                Decimal("6000.25"),
                "mixed",
                "to_landfill",
            ),
            Weighing(
                datetime.fromisoformat("2026-03-01T16:59:59.999+00:00"),
                "bank-coblong",
                90003,
                Decimal("12.125"),
                "plastic",
                "deposit",
            ),
        ]
        with psycopg.connect(db_url) as conn:
            insert_weighings(conn, late)
        body = client.get(
            "/v1/tonnage", params={"from": "2026-02-27", "to": "2026-03-03", "group_by": "category"}
        ).json()

    all_rows = rows + late
    exp = expected_frame(all_rows)
    exp = exp[(exp.day >= pd.Timestamp("2026-02-27")) & (exp.day < pd.Timestamp("2026-03-03"))]
    exp["d"] = exp.day.dt.strftime("%Y-%m-%d")
    want = exp.groupby(["d", "category"])["kg"].sum().div(1000).round(3)
    got = _api_frame(body)
    got["d"] = got.bucket_start.str[:10]
    got = got.set_index(["d", "category"])["tonnes"]
    pd.testing.assert_series_equal(
        got.sort_index(), want.rename("tonnes").sort_index(), check_exact=False, atol=0.0015
    )
    fates = exp[exp.category != "separate"].kg.sum() / 1000
    assert body["total_tonnes"] == pytest.approx(fates, abs=0.002)
    assert all(r["bucket_start"].endswith("T00:00:00+07:00") for r in body["rows"])
    # The late landfill truck at 16:59:59 UTC counts on 28 Feb (WIB), the one at 17:00 UTC on 1 Mar.
    day_before = first.json()
    before = {(r["bucket_start"][:10], r["category"]): r["tonnes"] for r in day_before["rows"]}
    after = {(r["bucket_start"][:10], r["category"]): r["tonnes"] for r in body["rows"]}
    assert after[("2026-02-28", "residual")] == pytest.approx(
        before.get(("2026-02-28", "residual"), 0) + 7000.5 / 1000, abs=0.001
    )
    assert after[("2026-03-01", "residual")] == pytest.approx(
        before.get(("2026-03-01", "residual"), 0) + 6000.25 / 1000, abs=0.001
    )


@pytest.mark.parametrize("group", ["district", "site", "material", "site_type"])
def test_monthly_tonnage_by_group_counts_fates_only(seeded, monkeypatch, group):
    db_url, rows = seeded
    with api_client(db_url, monkeypatch, role="viewer") as (client, _):
        body = client.get(
            "/v1/tonnage",
            params={"from": "2026-02-01", "to": "2026-04-01", "bucket": "month", "group_by": group},
        ).json()
    exp = expected_frame(rows)
    exp = exp[exp.category != "separate"]
    exp["month"] = exp.day.dt.strftime("%Y-%m")
    want = exp.groupby(["month", group])["kg"].sum().div(1000)
    want = want[want.abs() > 0.0005]
    got = _api_frame(body)
    got["month"] = got.bucket_start.str[:7]
    got = got.set_index(["month", group])["tonnes"]
    assert set(got.index) == set(want.index)
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=0.0015), k
    if group in ("district", "site"):
        assert all(r[f"{group}_name"] for r in body["rows"])


def test_weekly_buckets_start_on_monday_in_wib(seeded, monkeypatch):
    db_url, rows = seeded
    with api_client(db_url, monkeypatch) as (client, _):
        body = client.get(
            "/v1/tonnage", params={"from": "2026-02-23", "to": "2026-03-09", "bucket": "week"}
        ).json()
    starts = {r["bucket_start"] for r in body["rows"]}
    assert starts <= {"2026-02-23T00:00:00+07:00", "2026-03-02T00:00:00+07:00"}
    exp = expected_frame(rows)
    exp["week"] = exp.day - pd.to_timedelta(exp.day.dt.weekday, unit="D")
    want = exp.groupby(["week", "category"])["kg"].sum().div(1000)
    for r in body["rows"]:
        assert r["tonnes"] == pytest.approx(
            want[(pd.Timestamp(r["bucket_start"][:10]), r["category"])], abs=0.0015
        )


def test_hourly_buckets_and_datetime_bounds_match_raw_rows(seeded, monkeypatch):
    db_url, rows = seeded
    params = {
        "from": "2026-02-28T22:00:00+07:00",
        "to": "2026-03-01T03:00:00+07:00",
        "bucket": "hour",
        "group_by": "site_type",
    }
    with api_client(db_url, monkeypatch) as (client, _):
        body = client.get("/v1/tonnage", params=params).json()
        total = client.get("/v1/tonnage", params={**params, "bucket": "total"}).json()
    lo, hi = datetime.fromisoformat(params["from"]), datetime.fromisoformat(params["to"])
    exp = expected_frame([w for w in rows if lo <= w.ts < hi])
    fates = exp[exp.category != "separate"].kg.sum() / 1000
    assert sum(r["tonnes"] for r in body["rows"]) == pytest.approx(fates, abs=0.01)
    assert total["total_tonnes"] == pytest.approx(fates, abs=0.002)
    starts = {datetime.fromisoformat(r["bucket_start"]) for r in body["rows"]}
    assert starts and all(lo <= t < hi and t.minute == 0 for t in starts)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"from": "2026-03-05", "to": "2026-03-01"}, "must be before"),
        ({"from": "2026-03-01", "to": "2026-03-01"}, "must be before"),
        ({"from": "2026-13-01", "to": "2026-03-01"}, "'from' must be a date"),
        ({"from": "yesterday", "to": "2026-03-01"}, "'from' must be a date"),
        (
            {"from": "2026-03-01", "to": "2026-03-02", "group_by": "category,colour"},
            "unknown group 'colour'",
        ),
        ({"from": "2020-01-01", "to": "2026-03-02"}, "longer than"),
        ({"from": "2026-01-01", "to": "2026-03-02", "bucket": "hour"}, "31 days"),
        ({"from": "2026-03-01T10:30:00+07:00", "to": "2026-03-02", "bucket": "day"}, "whole hours"),
        ({"from": "2026-03-01", "to": "2026-03-02", "bucket": "fortnight"}, "bucket"),
        ({"to": "2026-03-02"}, "from"),
    ],
)
def test_bad_tonnage_requests_get_422_saying_what_to_fix(city_db, monkeypatch, params, needle):
    with api_client(city_db, monkeypatch, role="viewer") as (client, _):
        r = client.get("/v1/tonnage", params=params)
    assert r.status_code == 422, r.text
    assert needle in r.json()["detail"]


def test_unknown_city_is_404(city_db, monkeypatch):
    with api_client(city_db, monkeypatch) as (client, _):
        r = client.get(
            "/v1/tonnage", params={"from": "2026-03-01", "to": "2026-03-02", "city": "atlantis"}
        )
    assert r.status_code == 404
    assert "atlantis" in r.json()["detail"]
