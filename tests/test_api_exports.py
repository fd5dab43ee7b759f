"""Monthly exports: CSV and XLSX numbers identical to /v1/tonnage bucket=month; the national report."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime
from decimal import Decimal

import openpyxl
import psycopg
import pytest

from tests.test_api_seed import Weighing, api_client, insert_weighings, random_weighings, seed_city


@pytest.fixture(scope="module")
def report_db(module_db_url: str) -> str:
    """Two months of weighings across the 28 Feb / 1 Mar WIB boundary, plus known facility and bank rows."""
    rows = random_weighings(
        random.Random(11), datetime.fromisoformat("2026-02-27T00:00:00+00:00"), 24 * 4, 5
    )
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
        insert_weighings(conn, rows)
        conn.execute(
            "INSERT INTO quarantine (city_id, topic, payload, reason, received_at) VALUES ('apitown', 't', 'x', 'bad json', '2026-03-02T05:00:00+00')"
        )
        conn.commit()
    return module_db_url


GROUP_KEYS = {
    "category": ["category"],
    "district": ["district", "district_name"],
    "site": ["site", "site_name"],
    "material": ["material"],
}


@pytest.mark.parametrize("group", ["category", "district", "site", "material"])
def test_csv_export_equals_tonnage_endpoint(report_db, monkeypatch, group):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        r = client.get(
            "/v1/exports/monthly.csv",
            params={"month": "2026-02", "to_month": "2026-03", "group_by": group},
        )
        api = client.get(
            "/v1/tonnage",
            params={"from": "2026-02-01", "to": "2026-04-01", "bucket": "month", "group_by": group},
        ).json()
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    header, body, totals = lines[0], lines[1:-1], lines[-1]
    assert header[0] == "month" and header[-1] == "tonnes (t)"
    expected = [
        [row["bucket_start"][:7], *(row[k] for k in GROUP_KEYS[group]), row["tonnes"]]
        for row in api["rows"]
    ]
    assert [[*x[:-1], float(x[-1])] for x in body] == expected
    assert totals[0].startswith("total") and float(totals[-1]) == api["total_tonnes"]


def test_xlsx_export_has_every_sheet_and_equals_tonnage_endpoint(report_db, monkeypatch):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        r = client.get(
            "/v1/exports/monthly.xlsx", params={"month": "2026-02", "to_month": "2026-03"}
        )
        apis = {
            g: client.get(
                "/v1/tonnage",
                params={"from": "2026-02-01", "to": "2026-04-01", "bucket": "month", "group_by": g},
            ).json()
            for g in GROUP_KEYS
        }
        national = client.get("/v1/reports/national", params={"month": "2026-03"}).json()
    assert r.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == [
        "category",
        "district",
        "site",
        "material",
        "national",
        "landfill",
        "facilities",
        "waste_banks",
        "data_quality",
    ]
    for group, api in apis.items():
        ws = wb[group]
        values = [list(row) for row in ws.iter_rows(min_row=3, values_only=True)]
        body, totals = values[:-1], values[-1]
        expected = [
            [row["bucket_start"][:7], *(row[k] for k in GROUP_KEYS[group]), row["tonnes"]]
            for row in api["rows"]
        ]
        assert body == expected
        assert totals[-1] == api["total_tonnes"]
        assert ws.freeze_panes == "A3"
        assert ws.cell(3, len(expected[0])).number_format == "#,##0.000"
    nat = [list(row) for row in wb["national"].iter_rows(min_row=3, values_only=True)]
    march = next(row for row in nat if row[0] == "2026-03")
    assert (
        march[1] == national["A_t"] and march[3] == national["B_t"] and march[5] == national["C_t"]
    )


def test_national_report_terms_add_up(report_db, monkeypatch):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        rep = client.get("/v1/reports/national", params={"month": "2026-03"}).json()
        ton = client.get(
            "/v1/tonnage", params={"from": "2026-03-01", "to": "2026-04-01", "bucket": "total"}
        ).json()
    assert rep["A_t"] == pytest.approx(1500 * 31)
    assert "estimate" in rep["A_basis"]
    assert rep["managed_t"] == pytest.approx(rep["B_t"] + rep["C_t"], abs=0.002)
    assert rep["A_measured_t"] == pytest.approx(ton["total_tonnes"], abs=0.002)
    # Default category map: reduce and utilize are B, residual is C.
    totals = {t["category"]: t["tonnes"] for t in ton["totals"]}
    assert rep["B_t"] == pytest.approx(
        totals.get("reduce", 0) + totals.get("utilize", 0), abs=0.002
    )
    assert rep["C_t"] == pytest.approx(totals.get("residual", 0), abs=0.002)
    assert rep["recycling_rate"] == pytest.approx(
        (rep["D_t"] + rep["E_t"]) / rep["A_t"], abs=0.0001
    )
    landfill = rep["landfill"][0]
    assert landfill["net_t"] == pytest.approx(totals["residual"], abs=0.002)
    assert landfill["t_per_trip"] == pytest.approx(landfill["net_t"] / landfill["trips"], abs=0.002)
    assert rep["data_quality"]["quarantined"] == 1


def test_facility_and_waste_bank_sections_follow_the_weighings(db_url, monkeypatch):
    ts = datetime.fromisoformat("2026-05-10T03:00:00+00:00")
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        insert_weighings(
            conn,
            [
                Weighing(ts, "tps3r-compost", 1, Decimal("1000"), "food", "to_processing"),
                Weighing(ts, "tps3r-compost", 2, Decimal("300"), "food", "processed_output"),
                Weighing(ts, "tps3r-compost", 3, Decimal("150"), "residual", "to_landfill"),
                Weighing(ts, "tpst-recycle", 4, Decimal("500"), "plastic", "to_processing"),
                Weighing(
                    ts,
                    "bank-coblong",
                    5,
                    Decimal("10"),
                    "plastic",
                    "deposit",
                    price_per_kg=Decimal("2500"),
                ),
                Weighing(
                    ts,
                    "bank-hub",
                    6,
                    Decimal("10"),
                    "plastic",
                    "deposit",
                    from_own_site=True,
                    price_per_kg=Decimal("3000"),
                ),
            ],
        )
    with api_client(db_url, monkeypatch, role="planner") as (client, _):
        rep = client.get("/v1/reports/national", params={"month": "2026-05"}).json()
    compost = next(f for f in rep["facilities"] if f["site"] == "tps3r-compost")
    assert (compost["in_t"], compost["processed_output_t"], compost["residue_t"]) == (
        1.0,
        0.3,
        0.15,
    )
    assert rep["E_t"] == pytest.approx(0.85)  # compost input minus its residue
    assert rep["D_t"] == pytest.approx(
        0.51
    )  # recycling facility plus the unit bank (the hub's transfer is internal)
    assert rep["waste_banks"] == [
        {"month": "2026-05", "material": "plastic", "kg": 10.0, "amount_rp": 25000.0, "deposits": 1}
    ]


@pytest.mark.parametrize(
    "params",
    [
        {"month": "2026-13"},
        {"month": "26-01"},
        {"month": "2026-05", "to_month": "2026-01"},
        {"month": "2020-01", "to_month": "2026-01"},
    ],
)
def test_bad_export_months_get_422(report_db, monkeypatch, params):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        r = client.get("/v1/exports/monthly.csv", params=params)
    assert r.status_code == 422
    assert "month" in r.json()["detail"]
