"""Monthly exports: CSV and XLSX numbers identical to /v1/tonnage bucket=month, labelled in
Indonesian by default, every column typed; the national report with its coverage."""

from __future__ import annotations

import csv
import io
import random
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import openpyxl
import psycopg
import pytest

from api import export_columns as xc
from simulators.categories import classify
from tests.support.api_seed import (
    SITES,
    Weighing,
    api_client,
    insert_weighings,
    random_weighings,
    seed_city,
)

WIB = ZoneInfo("Asia/Jakarta")
SEED_ROWS = random_weighings(
    random.Random(11), datetime.fromisoformat("2026-02-27T00:00:00+00:00"), 24 * 4, 5
)
SITE_TYPE = {sid: stype for sid, _, stype, _ in SITES}


@pytest.fixture(scope="module")
def report_db(module_db_url: str) -> str:
    """Two months of weighings across the 28 Feb / 1 Mar WIB boundary, plus known facility and bank rows."""
    with psycopg.connect(module_db_url) as conn:
        seed_city(conn)
        insert_weighings(conn, SEED_ROWS)
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
            params={"month": "2026-02", "to_month": "2026-03", "group_by": group, "lang": "en"},
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
    assert header[0] == "Month" and header[-3:] == [
        "Tonnage (t)",
        "Month's data status",
        "Days with data",
    ]
    labels = schema_labels(report_db, "en", group) if group in LABELLED else {}
    expected = [
        [
            row["bucket_start"][:7],
            *(
                labels.get(row[k], row[k]) if group in LABELLED else row[k]
                for k in GROUP_KEYS[group]
            ),
            row["tonnes"],
        ]
        for row in api["rows"]
    ]
    assert [[*x[:-3], float(x[-3])] for x in body] == expected
    # Each month carries its coverage: 27-28 February and 1-3 March (WIB) have data.
    assert {(x[0], x[-2], x[-1]) for x in body} == {
        ("2026-02", "partial month", "2"),
        ("2026-03", "partial month", "3"),
    }
    assert totals[0].startswith("total") and float(totals[-3]) == api["total_tonnes"]


LABELLED = ("category", "material")


def schema_labels(db_url: str, lang: str, table: str) -> dict[str, str]:
    """Category or material codes -> labels, as the schema holds them."""
    column = "label_id" if lang == "id" else "label_en"
    assert table in LABELLED
    with psycopg.connect(db_url) as conn:
        return dict(conn.execute(f"SELECT code, {column} FROM {table}").fetchall())


def test_csv_in_indonesian_locale_uses_semicolons_and_decimal_commas(report_db, monkeypatch):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        r = client.get(
            "/v1/exports/monthly.csv",
            params={"month": "2026-03", "group_by": "material", "locale": "id"},
        )
        api = client.get(
            "/v1/tonnage",
            params={
                "from": "2026-03-01",
                "to": "2026-04-01",
                "bucket": "month",
                "group_by": "material",
            },
        ).json()
    assert r.status_code == 200 and r.content.startswith(b"\xef\xbb\xbf")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig")), delimiter=";"))
    assert lines[0] == [
        "Bulan",
        "Jenis sampah",
        "Tonase (ton)",
        "Status data bulan",
        "Hari berdata",
    ]
    assert {x[3] for x in lines[1:-1]} == {"sebagian (bulan parsial)"}
    labels = schema_labels(report_db, "id", "material")
    body = [[m, mat, float(t.replace(",", "."))] for m, mat, t, _, _ in lines[1:-1]]
    assert body == [["2026-03", labels[x["material"]], x["tonnes"]] for x in api["rows"]]
    assert any("," in x[2] for x in lines[1:]) and not any("." in x[2] for x in lines[1:])
    assert lines[-1][0] == "Jumlah" and float(lines[-1][2].replace(",", ".")) == api["total_tonnes"]


def test_xlsx_export_has_every_sheet_and_equals_tonnage_endpoint(report_db, monkeypatch):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        r = client.get(
            "/v1/exports/monthly.xlsx",
            params={"month": "2026-02", "to_month": "2026-03", "lang": "en"},
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
        body, totals = [v[:-2] for v in values[:-1]], values[-1][:-2]
        labels = schema_labels(report_db, "en", group) if group in LABELLED else {}
        expected = [
            [
                row["bucket_start"][:7],
                *(
                    labels.get(row[k], row[k]) if group in LABELLED else row[k]
                    for k in GROUP_KEYS[group]
                ),
                row["tonnes"],
            ]
            for row in api["rows"]
        ]
        assert body == expected
        assert totals[-1] == api["total_tonnes"]
        assert ws.freeze_panes == "A3"
        assert ws.cell(3, len(expected[0])).number_format == "#,##0.000"
    nat = [list(row) for row in wb["national"].iter_rows(min_row=3, values_only=True)]
    march = dict(
        zip(
            ["month", *(c.key for c in xc.NATIONAL)],
            next(r for r in nat if r[0] == "2026-03"),
            strict=True,
        )
    )
    for key in ("A_t", "B_t", "C_t", "B_share", "unmanaged_t", "days_with_data", "recycling_rate"):
        assert march[key] == national[key], key
    assert march["status"] == "partial month"


def test_xlsx_sheets_and_headers_are_indonesian_by_default(report_db, monkeypatch):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        r = client.get("/v1/exports/monthly.xlsx", params={"month": "2026-03"})
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == [
        "kategori",
        "kecamatan",
        "lokasi",
        "jenis_sampah",
        "nasional",
        "tpa",
        "fasilitas",
        "bank_sampah",
        "kualitas_data",
    ]
    header = [c.value for c in wb["nasional"][2]]
    assert header[:4] == ["Bulan", "Status data", "Jumlah hari", "Hari berdata"]
    assert "B Pengurangan sampah (ton)" in header and "%C Penanganan (C/A)" in header
    categories = {row[1] for row in wb["kategori"].iter_rows(min_row=3, values_only=True)}
    assert {"Kurangi", "Manfaatkan", "Residu ke TPA"} <= categories
    assert wb["nasional"].cell(3, 2).value == "sebagian (bulan parsial)"


SHEET_COLUMNS = {
    "category": [xc.MONTH, *xc.GROUP_COLUMNS["category"], xc.TONNES, *xc.MONTH_COVERAGE],
    "district": [xc.MONTH, *xc.GROUP_COLUMNS["district"], xc.TONNES, *xc.MONTH_COVERAGE],
    "site": [xc.MONTH, *xc.GROUP_COLUMNS["site"], xc.TONNES, *xc.MONTH_COVERAGE],
    "material": [xc.MONTH, *xc.GROUP_COLUMNS["material"], xc.TONNES, *xc.MONTH_COVERAGE],
    "national": [xc.MONTH, *xc.NATIONAL],
    "landfill": list(xc.LANDFILL),
    "facilities": list(xc.FACILITIES),
    "waste_banks": list(xc.WASTE_BANKS),
    "data_quality": list(xc.DATA_QUALITY),
}
EXPECTED_FORMATS = {
    "text": "General",
    "tonnes": "#,##0.000",
    "kg": "#,##0.000",
    "percent": "0.00%",
    "count": "#,##0",
    "rupiah": "#,##0",
}


def assert_sheet_formats(ws, columns, *, totals: bool) -> None:
    """Every body and totals cell carries its column's declared number format."""
    body_end = ws.max_row - (1 if totals else 0)
    assert body_end >= 3, ws.title
    for j, column in enumerate(columns, start=1):
        assert ws.cell(2, j).value == column.header("en"), (ws.title, j)
        for i in range(3, ws.max_row + 1):
            got = ws.cell(i, j).number_format
            assert got == EXPECTED_FORMATS[column.type], (ws.title, column.key, i, got)


def test_every_column_of_every_sheet_has_its_declared_format(report_db, monkeypatch):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        r = client.get(
            "/v1/exports/monthly.xlsx",
            params={"month": "2026-02", "to_month": "2026-03", "lang": "en"},
        )
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == list(SHEET_COLUMNS)
    for name, columns in SHEET_COLUMNS.items():
        assert_sheet_formats(wb[name], columns, totals=name != "data_quality")
    # Generation is tonnes, never a percentage (its header once contained "ratio").
    a_column = 1 + [c.key for c in SHEET_COLUMNS["national"]].index("A_t")
    assert wb["national"].cell(3, a_column).number_format == "#,##0.000"


def test_national_report_terms_add_up(report_db, monkeypatch):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        rep = client.get("/v1/reports/national", params={"month": "2026-03"}).json()
        ton = client.get(
            "/v1/tonnage", params={"from": "2026-03-01", "to": "2026-04-01", "bucket": "total"}
        ).json()
    # Data from 1 to 3 March (WIB) only: A covers those days, the month's estimate is labelled.
    days = sorted(
        {w.ts.astimezone(WIB).date() for w in SEED_ROWS if w.ts.astimezone(WIB).month == 3}
    )
    assert rep["coverage"]["days_with_data"] == rep["days_with_data"] == len(days) == 3
    assert rep["status"] == rep["coverage"]["status"] == "partial"
    assert rep["coverage"]["days_without_data"][0] == "2026-03-04"
    assert rep["A_t"] == pytest.approx(1500 * len(days))
    assert rep["A_month_estimate_t"] == pytest.approx(1500 * 31)
    assert "estimate" in rep["A_basis"] and "days with data" in rep["A_basis"]
    assert rep["B_share"] == pytest.approx(rep["B_t"] / rep["A_t"], abs=0.0001)
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


def test_national_report_equals_sums_over_the_raw_rows(report_db, monkeypatch):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        rep = client.get("/v1/reports/national", params={"month": "2026-03"}).json()
    march = [w for w in SEED_ROWS if w.ts.astimezone(WIB).month == 3]
    grams = {"reduce": 0, "utilize": 0, "residual": 0}
    for w in march:
        c = classify(
            SITE_TYPE[w.site_id], w.stream, w.material, w.from_own_site, int(w.net_kg * 1000)
        )
        for k in grams:
            grams[k] += getattr(c, k)
    b = Decimal(grams["reduce"] + grams["utilize"]) / 1_000_000
    c_t = Decimal(grams["residual"]) / 1_000_000
    assert rep["B_t"] == float(b.quantize(Decimal("0.001")))
    assert rep["C_t"] == float(c_t.quantize(Decimal("0.001")))
    a = Decimal(1500 * 3)
    assert rep["unmanaged_t"] == float((a - b - c_t).quantize(Decimal("0.001")))
    silent = {s["device"]: s["days_silent"] for s in rep["coverage"]["scales_silent_some_days"]}
    for sid in SITE_TYPE:
        days_at_site = {w.ts.astimezone(WIB).date() for w in march if w.site_id == sid}
        assert silent.get(f"scale-{sid}", 0) == 31 - len(days_at_site)


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
    assert (
        compost["in_t"],
        compost["processed_t"],
        compost["processed_output_t"],
        compost["residue_t"],
    ) == (1.0, 0.85, 0.3, 0.15)
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
        {"month": "2026-1"},
        {"month": "0000-01"},
        {"month": "99999-01"},
    ],
)
def test_bad_export_months_get_422(report_db, monkeypatch, params):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        r = client.get("/v1/exports/monthly.csv", params=params)
    assert r.status_code == 422
    assert "month" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "params", "word"),
    [
        ("/v1/exports/monthly.csv", {"month": "2026-03", "lang": "fr"}, "lang"),
        ("/v1/exports/monthly.csv", {"month": "2026-03", "locale": "de"}, "locale"),
        ("/v1/exports/monthly.xlsx", {"month": "2026-03", "lang": "EN"}, "lang"),
        ("/v1/exports/annual.xlsx", {"year": "0"}, "year"),
        ("/v1/exports/annual.csv", {"year": "99999"}, "year"),
        ("/v1/exports/annual.csv", {"year": "2026", "locale": "fr"}, "locale"),
        ("/v1/reports/national", {"month": "2026-3"}, "month"),
        ("/v1/reports/national", {"year": "1900"}, "year"),
        ("/v1/reports/national", {"year": "20x6"}, "year"),
        ("/v1/reports/national", {}, "year"),
        ("/v1/reports/national", {"year": "2026", "month": "2026-03"}, "month"),
    ],
)
def test_bad_report_and_export_parameters_get_422_with_a_message(
    report_db, monkeypatch, path, params, word
):
    with api_client(report_db, monkeypatch, role="planner") as (client, _):
        r = client.get(path, params=params)
    assert r.status_code == 422
    assert word in r.json()["detail"]


def test_totals_over_months_are_rounded_after_summing(db_url, monkeypatch):
    # 0.4 kg a month rounds to 0.000 t; over two months the exact total is 0.8 kg = 0.001 t.
    rows = [
        Weighing(datetime.fromisoformat(ts), site, i, Decimal("0.4"), material, stream)
        for i, (ts, site, material, stream) in enumerate(
            [
                ("2026-05-10T03:00:00+00:00", "tps3r-compost", "food", "to_processing"),
                ("2026-06-10T03:00:00+00:00", "tps3r-compost", "food", "to_processing"),
                ("2026-05-10T04:00:00+00:00", "tpa-gate", "residual", "to_landfill"),
                ("2026-06-10T04:00:00+00:00", "tpa-gate", "residual", "to_landfill"),
            ],
            start=1,
        )
    ]
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
        insert_weighings(conn, rows)
    with api_client(db_url, monkeypatch, role="planner") as (client, _):
        r = client.get(
            "/v1/exports/monthly.xlsx",
            params={"month": "2026-05", "to_month": "2026-06", "lang": "en"},
        )
    wb = openpyxl.load_workbook(io.BytesIO(r.content))
    facilities = [list(x) for x in wb["facilities"].iter_rows(min_row=3, values_only=True)]
    assert [x[3] for x in facilities[:-1]] == [0.0, 0.0]
    assert facilities[-1][3] == 0.001  # in, summed exactly then rounded
    landfill = [list(x) for x in wb["landfill"].iter_rows(min_row=3, values_only=True)]
    assert landfill[-1][4] == 0.001 and landfill[-1][3] == 2
    national = [list(x) for x in wb["national"].iter_rows(min_row=3, values_only=True)]
    keys = ["month", *(c.key for c in xc.NATIONAL)]
    total = dict(zip(keys, national[-1], strict=True))
    assert total["C_t"] == 0.001 and total["B_t"] == 0.001
