"""Monthly exports for planners: CSV (streamed) and XLSX (formatted), numbers equal to /v1/tonnage."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, Literal

import xlsxwriter
from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from api.deps import City, CityDep, Conn, HeavyLane, PlannerKey
from api.params import local_midnight, next_month, parse_month_range
from api.queries.monthly_report import MonthReport, month_report
from api.queries.tonnage import TonnageQuery, as_tonnes, tonnage

router = APIRouter(prefix="/v1", tags=["exports"], dependencies=[HeavyLane])
ExportGroup = Literal["category", "district", "site", "material"]
EXPORT_GROUPS: tuple[ExportGroup, ...] = ("category", "district", "site", "material")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Group -> (JSON keys in /v1/tonnage rows, column headers).
GROUP_COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "category": (("category",), ("category",)),
    "district": (("district", "district_name"), ("district_id", "district_name")),
    "site": (("site", "site_name"), ("site_id", "site_name")),
    "material": (("material",), ("material",)),
}
NATIONAL_COLUMNS = (
    ("month", "month"),
    ("A_t", "A generation (t, estimate)"),
    ("A_measured_t", "measured reduce+utilize+residual (t)"),
    ("B_t", "B reduction (t)"),
    ("B_share", "B/A (ratio)"),
    ("C_t", "C handling (t)"),
    ("C_share", "C/A (ratio)"),
    ("managed_t", "B+C managed (t)"),
    ("managed_share", "(B+C)/A (ratio)"),
    ("unmanaged_t", "unmanaged A-(B+C) (t)"),
    ("D_t", "D recycled (t)"),
    ("E_t", "E raw material (t)"),
    ("recycling_rate", "(D+E)/A (ratio)"),
)


@dataclass(slots=True)
class Table:
    """A header, rows of cells and a totals row."""

    title: str
    header: list[str]
    rows: list[list[Any]]
    totals: list[Any] | None


async def grouping_table(conn: Conn, city: City, first: date, end: date, group: str) -> Table:
    """One row per month × group from the tonnage query (bucket=month), plus a totals row."""
    q = TonnageQuery(
        city.city_id,
        city.tz,
        local_midnight(first, city.tz),
        local_midnight(end, city.tz),
        "month",
        (group,),
    )
    result = await tonnage(conn, q)
    keys, headers = GROUP_COLUMNS[group]
    rows = [
        [
            r.bucket_start.astimezone(city.tz).strftime("%Y-%m"),
            *(r.groups[k] for k in keys),
            as_tonnes(r.kg),
        ]
        for r in result.rows
    ]
    label = "total (reduce+utilize+residual)" if group == "category" else "total"
    totals = [label, *([""] * len(keys)), as_tonnes(result.fate_kg())]
    return Table(group, ["month", *headers, "tonnes (t)"], rows, totals)


async def reports_for(conn: Conn, city: City, first: date, end: date) -> list[MonthReport]:
    """The monthly report of each month in [first, end)."""
    out = []
    month = first
    while month < end:
        out.append(await month_report(conn, city_id=city.city_id, tz=city.tz, first=month))
        month = next_month(month)
    return out


def report_tables(reports: list[MonthReport]) -> list[Table]:
    """The national, landfill, facilities, waste-bank and data-quality sheets."""
    national_rows = [[m.national[k] for k, _ in NATIONAL_COLUMNS] for m in reports]
    sums = ["total"] + [
        round(sum(r[i] or 0 for r in national_rows), 3) if k.endswith("_t") else ""
        for i, (k, _) in enumerate(NATIONAL_COLUMNS)
        if i
    ]
    tables = [Table("national", [h for _, h in NATIONAL_COLUMNS], national_rows, sums)]
    landfill = [
        [
            x["month"],
            x["site"],
            x["site_name"],
            x["trips"],
            x["net_t"],
            x["t_per_trip"],
            x["quota_t"],
            x["quota_used_share"],
        ]
        for m in reports
        for x in m.landfill
    ]
    tables.append(
        Table(
            "landfill",
            [
                "month",
                "site_id",
                "site_name",
                "trips",
                "net (t)",
                "t per trip",
                "quota (t)",
                "quota used (ratio)",
            ],
            landfill,
            [
                "total",
                "",
                "",
                sum(r[3] for r in landfill),
                round(sum(r[4] for r in landfill), 3),
                "",
                "",
                "",
            ],
        )
    )
    fac = [
        [x["month"], x["site"], x["site_name"], x["in_t"], x["processed_output_t"], x["residue_t"]]
        for m in reports
        for x in m.facilities
    ]
    tables.append(
        Table(
            "facilities",
            ["month", "site_id", "site_name", "in (t)", "processed output (t)", "residue (t)"],
            fac,
            ["total", "", "", *(round(sum(r[i] for r in fac), 3) for i in (3, 4, 5))],
        )
    )
    banks = [
        [x["month"], x["material"], x["kg"], x["amount_rp"], x["deposits"]]
        for m in reports
        for x in m.waste_banks
    ]
    tables.append(
        Table(
            "waste_banks",
            ["month", "material", "deposited (kg)", "credited (Rp)", "deposits"],
            banks,
            [
                "total",
                "",
                round(sum(r[2] for r in banks), 3),
                sum(r[3] for r in banks),
                sum(r[4] for r in banks),
            ],
        )
    )
    dq = [
        [
            m.data_quality["month"],
            m.data_quality["weighings"],
            m.data_quality["manual_tickets"],
            m.data_quality["manual_share"],
            m.data_quality["silent_scales_now"],
            m.data_quality["quarantined"],
            "generation A is an estimate",
        ]
        for m in reports
    ]
    tables.append(
        Table(
            "data_quality",
            [
                "month",
                "weighings",
                "manual tickets",
                "manual share (ratio)",
                "silent scales (now)",
                "quarantined messages",
                "note",
            ],
            dq,
            None,
        )
    )
    return tables


def _csv_line(cells: list[Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n").writerow(["" if c is None else c for c in cells])
    return buf.getvalue()


async def _stream(table: Table) -> AsyncIterator[str]:
    yield "\ufeff" + _csv_line(table.header)
    for row in table.rows:
        yield _csv_line(row)
    if table.totals is not None:
        yield _csv_line(table.totals)


@router.get(
    "/exports/monthly.csv",
    summary="Monthly tonnage as CSV (Excel-friendly, UTF-8 with BOM)",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_csv(
    conn: Conn,
    key: PlannerKey,
    city: CityDep,
    month: Annotated[str, Query(description="First month YYYY-MM.", examples=["2026-10"])],
    to_month: Annotated[
        str | None, Query(description="Last month YYYY-MM (inclusive; default: `month`).")
    ] = None,
    group_by: Annotated[ExportGroup, Query(description="One grouping per file.")] = "category",
    layout: Annotated[
        Literal["tonnage", "national"], Query(description="tonnage, or the national A–E terms.")
    ] = "tonnage",
) -> StreamingResponse:
    """One row per month × group and a totals row; numbers identical to `/v1/tonnage?bucket=month`."""
    first, end = parse_month_range(month, to_month)
    if layout == "national":
        table = report_tables(await reports_for(conn, city, first, end))[0]
    else:
        table = await grouping_table(conn, city, first, end, group_by)
    name = f"pisman_{city.city_id}_{first:%Y-%m}_{layout if layout == 'national' else group_by}.csv"
    return StreamingResponse(
        _stream(table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def build_xlsx(city: City, tables: list[Table], title: str) -> bytes:
    """The workbook: one sheet per table, header with units, number formats, totals, frozen header."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    head = wb.add_format(
        {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}
    )
    tonnes = wb.add_format({"num_format": "#,##0.000"})
    ratio = wb.add_format({"num_format": "0.00%"})
    integer = wb.add_format({"num_format": "#,##0"})
    bold = wb.add_format({"bold": True, "top": 1})
    bold_t = wb.add_format({"bold": True, "top": 1, "num_format": "#,##0.000"})
    bold_i = wb.add_format({"bold": True, "top": 1, "num_format": "#,##0"})
    for table in tables:
        ws = wb.add_worksheet(table.title[:31])
        ws.write(0, 0, f"{title} — {table.title}", wb.add_format({"bold": True, "font_size": 12}))
        ws.write_row(1, 0, table.header, head)
        formats = []
        for h in table.header:
            if "(t)" in h or "(kg)" in h or h == "t per trip":
                formats.append((tonnes, bold_t))
            elif "ratio" in h:
                formats.append((ratio, bold))
            elif h in (
                "trips",
                "deposits",
                "weighings",
                "manual tickets",
                "credited (Rp)",
                "quarantined messages",
                "silent scales (now)",
            ):
                formats.append((integer, bold_i))
            else:
                formats.append((None, bold))
        for i, row in enumerate(table.rows, start=2):
            for j, cell in enumerate(row):
                ws.write(i, j, cell, formats[j][0]) if formats[j][0] is not None else ws.write(
                    i, j, cell
                )
        if table.totals is not None:
            r = len(table.rows) + 2
            for j, cell in enumerate(table.totals):
                ws.write(r, j, cell, formats[j][1])
        ws.freeze_panes(2, 0)
        ws.set_column(0, len(table.header) - 1, 16)
    wb.close()
    return buf.getvalue()


@router.get(
    "/exports/monthly.xlsx",
    summary="Monthly report as XLSX: one sheet per grouping plus the national report",
    response_class=Response,
    responses={200: {"content": {XLSX_TYPE: {}}}},
)
async def export_xlsx(
    conn: Conn,
    key: PlannerKey,
    city: CityDep,
    month: Annotated[str, Query(description="First month YYYY-MM.", examples=["2026-10"])],
    to_month: Annotated[str | None, Query(description="Last month YYYY-MM (inclusive).")] = None,
) -> Response:
    """Sheets category, district, site, material, national, landfill, facilities, waste_banks, data_quality."""
    first, end = parse_month_range(month, to_month)
    tables = [await grouping_table(conn, city, first, end, g) for g in EXPORT_GROUPS]
    tables += report_tables(await reports_for(conn, city, first, end))
    last = date(end.year - (end.month == 1), (end.month - 2) % 12 + 1, 1)
    title = f"{city.name}: {first:%Y-%m}" + (f" to {last:%Y-%m}" if last != first else "")
    body = await asyncio.to_thread(build_xlsx, city, tables, title)
    name = f"pisman_{city.city_id}_{first:%Y-%m}.xlsx"
    return Response(
        body,
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
