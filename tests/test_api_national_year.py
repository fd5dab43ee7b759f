"""The annual national view (/v1/reports/national?year=, annual.xlsx, annual.csv) and the month
in progress, checked against sums over the raw rows the test inserted."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import psycopg
import pytest

from api import export_columns as xc
from tests.support.api_seed import Weighing, api_client, insert_weighings, seed_city

WIB = ZoneInfo("Asia/Jakarta")
YEAR = 2025
# March complete (every day), April 1-10 only, every other month without data.
DAYS = [date(YEAR, 3, d) for d in range(1, 32)] + [date(YEAR, 4, d) for d in range(1, 11)]


def year_rows() -> list[Weighing]:
    """Each covered day: a bank deposit (B), a facility input and residue (B), a landfill load (C)."""
    rows: list[Weighing] = []
    seq = 0
    for i, day in enumerate(DAYS):
        ts = datetime.combine(day, time(9), tzinfo=WIB)
        for site, kg, material, stream in (
            ("bank-coblong", Decimal("12.345") + i, "plastic", "deposit"),
            ("tps3r-compost", Decimal("800"), "food", "to_processing"),
            ("tps3r-compost", Decimal("100.5"), "residual", "to_landfill"),
            ("tpa-gate", Decimal("6000") + 10 * i, "mixed", "to_landfill"),
        ):
            seq += 1
            rows.append(Weighing(ts, site, seq, kg, material, stream))
    return rows


ROWS = year_rows()


@pytest.fixture(scope="module")
def year_db(module_db_url: str) -> str:
    """A city with a complete March, a partial April and no other data in the year."""
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
        insert_weighings(conn, ROWS)
    return module_db_url


def expected_month(month: int) -> dict[str, Decimal]:
    """B, C and covered days of a month, summed from the raw rows (default rules)."""
    rows = [w for w in ROWS if w.ts.month == month]
    b = sum(
        (
            w.net_kg
            for w in rows
            if w.stream == "deposit"
            or (w.site_id.startswith("tps3r") and w.stream == "to_processing")
        ),
        Decimal(0),
    ) - sum(
        (w.net_kg for w in rows if w.site_id.startswith("tps3r") and w.stream == "to_landfill"),
        Decimal(0),
    )
    c = sum((w.net_kg for w in rows if w.site_id == "tpa-gate"), Decimal(0))
    days = len({w.ts.date() for w in rows})
    return {"B": b / 1000, "C": c / 1000, "days": Decimal(days)}


def t(x: Decimal) -> float:
    return float(x.quantize(Decimal("0.001")))


def test_year_report_fills_each_month_and_the_annual_terms(year_db, monkeypatch):
    with api_client(year_db, monkeypatch, role="planner") as (client, _):
        rep = client.get("/v1/reports/national", params={"year": str(YEAR)}).json()
    months = {m["month"]: m for m in rep["months"]}
    assert list(months) == [f"{YEAR}-{m:02d}" for m in range(1, 13)]
    assert months[f"{YEAR}-03"]["status"] == "complete"
    assert months[f"{YEAR}-04"]["status"] == "partial"
    assert months[f"{YEAR}-04"]["coverage"]["days_without_data"][0] == f"{YEAR}-04-11"
    for m in (1, 2, *range(5, 13)):
        month = months[f"{YEAR}-{m:02d}"]
        assert month["status"] == "no_data"
        # An empty month is not 100 % unmanaged: no A, no shares, nothing unmanaged.
        assert month["A_t"] is None and month["unmanaged_t"] is None and month["B_share"] is None
    total_b = total_c = Decimal(0)
    for m in (3, 4):
        e = expected_month(m)
        got = months[f"{YEAR}-{m:02d}"]
        a = 1500 * e["days"]
        assert got["days_with_data"] == e["days"]
        assert got["A_t"] == t(a)
        assert (got["B_t"], got["C_t"]) == (t(e["B"]), t(e["C"]))
        assert got["B_share"] == round(float(e["B"] / a), 4)
        assert got["unmanaged_t"] == t(a - e["B"] - e["C"])
        total_b += e["B"]
        total_c += e["C"]
    annual = rep["annual"]
    a_year = Decimal(1500 * len(DAYS))
    assert annual["days_with_data"] == len(DAYS) and annual["days"] == 365
    assert annual["A_t"] == t(a_year)
    assert annual["A_month_estimate_t"] == t(Decimal(1500 * 365))
    assert (annual["B_t"], annual["C_t"]) == (t(total_b), t(total_c))
    assert annual["B_share"] == round(float(total_b / a_year), 4)
    assert annual["C_share"] == round(float(total_c / a_year), 4)
    assert annual["managed_share"] == round(float((total_b + total_c) / a_year), 4)
    assert annual["unmanaged_t"] == t(a_year - total_b - total_c)
    assert annual["recycling_rate"] is not None and annual["partial"] is True
    assert annual["months_by_status"] == {
        "complete": 1,
        "partial": 1,
        "in_progress": 0,
        "future": 0,
        "no_data": 10,
    }


def test_annual_xlsx_has_months_as_columns_equal_to_the_api(year_db, monkeypatch):
    with api_client(year_db, monkeypatch, role="planner") as (client, _):
        rep = client.get("/v1/reports/national", params={"year": str(YEAR)}).json()
        r = client.get("/v1/exports/annual.xlsx", params={"year": str(YEAR)})
    assert r.status_code == 200
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames[:2] == ["nasional_tahunan", "kategori"]
    ws = wb["nasional_tahunan"]
    header = [c.value for c in ws[2]]
    assert header[0] == "Indikator" and header[3] == f"Mar {YEAR}" and header[-1] == f"Tahun {YEAR}"
    assert header[5] == f"Mei {YEAR}" and len(header) == 14
    for i, column in enumerate(xc.NATIONAL, start=3):
        assert ws.cell(i, 1).value == column.header("id")
        for j in range(2, 15):
            cell = ws.cell(i, j)
            assert cell.number_format == xc.NUMBER_FORMATS[column.type], (column.key, j)
            if column.key == "status":
                continue
            expected = rep["annual"][column.key] if j == 14 else rep["months"][j - 2][column.key]
            assert cell.value == expected, (column.key, j)
    assert ws.cell(3, 4).value == "lengkap" and ws.cell(3, 5).value == "sebagian (bulan parsial)"
    assert ws.cell(3, 2).value == "tanpa data"


def test_annual_csv_in_indonesian_locale(year_db, monkeypatch):
    with api_client(year_db, monkeypatch, role="planner") as (client, _):
        rep = client.get("/v1/reports/national", params={"year": str(YEAR)}).json()
        r = client.get(
            "/v1/exports/annual.csv", params={"year": str(YEAR), "lang": "en", "locale": "id"}
        )
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert lines[0][0] == "Indicator" and lines[0][-1] == f"Year {YEAR}"
    by_name = {line[0]: line[1:] for line in lines[1:]}
    b_row = by_name["B reduction (t)"]
    assert float(b_row[-1].replace(",", ".")) == rep["annual"]["B_t"]
    assert b_row[0] == ""  # January: no data, an empty cell (not 0, not 100 % unmanaged)
    assert by_name["Data status"][2] == "complete"


def test_month_in_progress_and_future_months_are_flagged(db_url, monkeypatch):
    today = datetime.now(WIB).date()
    yesterday = datetime.combine(today - timedelta(days=1), time(10), tzinfo=WIB)
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        insert_weighings(
            conn, [Weighing(yesterday, "tpa-gate", 1, Decimal("5000"), "mixed", "to_landfill")]
        )
    month = yesterday.strftime("%Y-%m")
    with api_client(db_url, monkeypatch, role="planner") as (client, _):
        rep = client.get("/v1/reports/national", params={"month": month}).json()
        year = client.get("/v1/reports/national", params={"year": str(today.year + 1)}).json()
    if yesterday.month == today.month:
        assert rep["status"] == "in_progress" and rep["coverage"]["in_progress"] is True
        assert rep["coverage"]["days_elapsed"] == today.day
        # Missing days and silent scales are judged over the ended days, not today.
        assert today.isoformat() not in rep["coverage"]["days_without_data"]
        assert len(rep["coverage"]["days_without_data"]) == today.day - 2
        silent = {x["device"]: x["days_silent"] for x in rep["coverage"]["scales_silent_some_days"]}
        assert silent["scale-bank-coblong"] == today.day - 1
        assert silent.get("scale-tpa-gate", 0) == today.day - 2
    assert rep["days_with_data"] == 1 and rep["A_t"] == 1500.0
    assert rep["C_t"] == 5.0 and rep["unmanaged_t"] == 1495.0
    assert {m["status"] for m in year["months"]} == {"future"}
    assert year["annual"]["A_t"] is None and year["annual"]["unmanaged_t"] is None
