"""Exports for planners: CSV (streamed) and XLSX (typed formats), in SIPSN terms, equal to the API."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

import xlsxwriter
from fastapi import APIRouter, Query
from fastapi.responses import Response, StreamingResponse

from api import export_columns as xc
from api.deps import City, CityDep, Conn, HeavyLane, PlannerKey
from api.errors import ERROR_RESPONSES
from api.export_columns import Column, Lang
from api.params import local_midnight, next_month, parse_month_range, parse_year
from api.queries.monthly_report import (
    MonthReport,
    coverage_of,
    local_today,
    month_report,
    summarize,
    year_reports,
)
from api.queries.tonnage import TonnageQuery, as_tonnes, tonnage

router = APIRouter(
    prefix="/v1", tags=["exports"], dependencies=[HeavyLane], responses=ERROR_RESPONSES
)
ExportGroup = Literal["category", "district", "site", "material"]
EXPORT_GROUPS: tuple[ExportGroup, ...] = ("category", "district", "site", "material")
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CsvLocale = Literal["en", "id"]
# Category and material labels live beside their codes in the schema (sql/001_core.sql).
LABELS = """
SELECT 'category', code, label_id, label_en FROM category
UNION ALL SELECT 'material', code, label_id, label_en FROM material
"""

# Files, not JSON: the schema names each media type (the columns are in api/export_columns.py).
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "CSV, UTF-8 with a BOM: a header row with units, rows, a totals row.",
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": (
                    "\ufeffBulan,Kategori,Tonase (ton),Status data bulan,Hari berdata\r\n"
                    "2026-10,Kurangi,9001.5,lengkap,31\r\n"
                ),
            }
        },
    }
}
XLSX_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "An XLSX workbook, one sheet per table.",
        "content": {XLSX_TYPE: {"schema": {"type": "string", "format": "binary"}}},
    }
}

LangQuery = Annotated[
    Lang, Query(description="Headers, sheet names and labels: `id` (SIPSN terms) or `en`.")
]
LocaleQuery = Annotated[
    CsvLocale,
    Query(description="`en`: `,` and a decimal point; `id`: `;` and a decimal comma."),
]


@dataclass(slots=True)
class Table:
    """A sheet: typed columns, rows of cells and a totals row. In a transposed table (months as
    columns) `row_types` gives each row's type; its first column holds the row's name."""

    key: str
    columns: list[Column]
    rows: list[list[Any]]
    totals: list[Any] | None
    row_types: list[Column] | None = None

    def cell_type(self, i: int, j: int) -> Column:
        """The spec deciding the format of body cell (i, j) (a totals row uses its column's)."""
        if self.row_types is not None and j > 0 and i < len(self.row_types):
            return self.row_types[i]
        return self.columns[j]


class Labels:
    """Category and material names in both languages (codes where the schema has none)."""

    def __init__(self, rows: list[tuple[str, str, str, str]]) -> None:
        self._by_code = {(kind, code): (id_, en) for kind, code, id_, en in rows}

    def get(self, kind: str, code: str | None, lang: Lang) -> str | None:
        """The label of a code in the language."""
        if code is None:
            return None
        id_, en = self._by_code.get((kind, code), (code, code))
        return id_ if lang == "id" else en


async def labels_of(conn: Conn) -> Labels:
    """The schema's labels."""
    return Labels(list(await (await conn.execute(LABELS)).fetchall()))


async def coverages_for(conn: Conn, city: City, first: date, end: date) -> dict[str, Any]:
    """Each month's coverage in [first, end), by YYYY-MM."""
    today = local_today(city.tz)
    out: dict[str, Any] = {}
    month = first
    while month < end:
        out[f"{month:%Y-%m}"] = await coverage_of(
            conn, city_id=city.city_id, tz=city.tz, first=month, today=today
        )
        month = next_month(month)
    return out


async def grouping_table(
    conn: Conn,
    city: City,
    first: date,
    end: date,
    group: str,
    lang: Lang,
    labels: Labels,
    coverage: dict[str, Any],
) -> Table:
    """One row per month × group from the tonnage query (bucket=month), each with its month's
    coverage (status, days with data), plus a totals row."""
    q = TonnageQuery(
        city.city_id,
        city.tz,
        local_midnight(first, city.tz),
        local_midnight(end, city.tz),
        "month",
        (group,),
    )
    result = await tonnage(conn, q)
    columns = xc.GROUP_COLUMNS[group]
    labelled = group if group in ("category", "material") else None
    rows = []
    for r in result.rows:
        month = r.bucket_start.astimezone(city.tz).strftime("%Y-%m")
        cov = coverage.get(month) or {}
        rows.append(
            [
                month,
                *(
                    labels.get(labelled, r.groups[c.key], lang) if labelled else r.groups[c.key]
                    for c in columns
                ),
                as_tonnes(r.kg),
                xc.status_label(cov["status"], lang) if cov else None,
                cov.get("days_with_data"),
            ]
        )
    label = xc.word("total_fates" if group == "category" else "total", lang)
    totals = [label, *([""] * len(columns)), as_tonnes(result.fate_kg()), "", ""]
    return Table(group, [xc.MONTH, *columns, xc.TONNES, *xc.MONTH_COVERAGE], rows, totals)


async def reports_for(conn: Conn, city: City, first: date, end: date) -> list[MonthReport]:
    """The monthly report of each month in [first, end)."""
    out = []
    month = first
    while month < end:
        out.append(await month_report(conn, city_id=city.city_id, tz=city.tz, first=month))
        month = next_month(month)
    return out


def _national_cell(values: dict[str, Any], column: Column, lang: Lang) -> Any:
    value = values.get(column.key)
    return xc.status_label(value, lang) if column.key == "status" and value else value


def _period_status(summary: dict[str, Any], lang: Lang) -> str:
    return (
        xc.word("period_partial", lang) if summary["partial"] else xc.status_label("complete", lang)
    )


def national_table(reports: list[MonthReport], lang: Lang) -> Table:
    """One row per month (with its coverage) and the period's totals: exact sums, shares over A."""
    rows = [[m.month, *(_national_cell(m.national, c, lang) for c in xc.NATIONAL)] for m in reports]
    summary = summarize(reports, "total")
    summary["status"] = _period_status(summary, lang)
    totals = [xc.word("total", lang), *(summary.get(c.key) for c in xc.NATIONAL)]
    return Table("national", [xc.MONTH, *xc.NATIONAL], rows, totals)


def annual_table(reports: list[MonthReport], year: int, lang: Lang) -> Table:
    """Months as columns, one row per national term, and the year's column (filled in)."""
    summary = summarize(reports, str(year))
    summary["status"] = _period_status(summary, lang)
    month_columns = [
        Column(
            f"m{i + 1:02d}",
            f"{xc.MONTH_NAMES['id'][i]} {year}",
            f"{xc.MONTH_NAMES['en'][i]} {year}",
            "text",
        )
        for i in range(12)
    ]
    year_column = Column("year", f"{xc.word('year', 'id')} {year}", f"Year {year}", "text")
    rows = [
        [
            c.header(lang),
            *(_national_cell(m.national, c, lang) for m in reports),
            summary.get(c.key),
        ]
        for c in xc.NATIONAL
    ]
    return Table(
        "annual",
        [xc.INDICATOR, *month_columns, year_column],
        rows,
        None,
        row_types=list(xc.NATIONAL),
    )


def _exact_t(reports: list[MonthReport], key: str) -> float:
    """A section's total over the months: summed exactly in kg, rounded after summing."""
    return as_tonnes(sum((m.exact_kg.get(key) or Decimal(0) for m in reports), Decimal(0)))


def landfill_table(reports: list[MonthReport], lang: Lang) -> Table:
    """Each landfill gate's month: trips, net tonnes (total summed exactly), quota use."""
    rows = [[x[c.key] for c in xc.LANDFILL] for m in reports for x in m.landfill]
    total_trips = sum(r[3] for r in rows)
    totals = [xc.word("total", lang), "", "", total_trips, _exact_t(reports, "landfill_net")]
    return Table("landfill", list(xc.LANDFILL), rows, [*totals, "", "", ""])


def facilities_table(reports: list[MonthReport], lang: Lang) -> Table:
    """Each facility's month: in, processed, output, residue (totals summed exactly)."""
    rows = [[x[c.key] for c in xc.FACILITIES] for m in reports for x in m.facilities]
    sections = ("facility_in", "facility_processed", "facility_output", "facility_residue")
    totals = [xc.word("total", lang), "", "", *(_exact_t(reports, k) for k in sections)]
    return Table("facilities", list(xc.FACILITIES), rows, totals)


def waste_banks_table(reports: list[MonthReport], lang: Lang, labels: Labels) -> Table:
    """Waste-bank deposits per month and material: kg, rupiah, deposits."""
    rows = [
        [
            x["month"],
            labels.get("material", x["material"], lang),
            x["kg"],
            x["amount_rp"],
            x["deposits"],
        ]
        for m in reports
        for x in m.waste_banks
    ]
    bank_kg = sum((m.exact_kg.get("bank_kg") or Decimal(0) for m in reports), Decimal(0))
    totals = [
        xc.word("total", lang),
        "",
        float(bank_kg.quantize(Decimal("0.001"))),
        sum(r[3] for r in rows),
        sum(r[4] for r in rows),
    ]
    return Table("waste_banks", list(xc.WASTE_BANKS), rows, totals)


def data_quality_table(reports: list[MonthReport], lang: Lang) -> Table:
    """Each month's coverage, manual tickets, silent scales and quarantined messages."""
    days_word = "hari" if lang == "id" else "days"
    rows = [
        [
            m.month,
            xc.status_label(m.coverage["status"], lang),
            m.coverage["days_with_data"],
            m.coverage["days_in_month"],
            ", ".join(m.coverage["days_without_data"]),
            ", ".join(
                f"{s['device']} ({s['days_silent']} {days_word})"
                for s in m.coverage["scales_silent_some_days"]
            ),
            m.data_quality["weighings"],
            m.data_quality["manual_tickets"],
            m.data_quality["manual_share"],
            m.data_quality["silent_scales_now"],
            m.data_quality["quarantined"],
            xc.word("a_note", lang),
        ]
        for m in reports
    ]
    return Table("data_quality", list(xc.DATA_QUALITY), rows, None)


def report_tables(reports: list[MonthReport], lang: Lang, labels: Labels) -> list[Table]:
    """The national, landfill, facilities, waste-bank and data-quality sheets."""
    return [
        national_table(reports, lang),
        landfill_table(reports, lang),
        facilities_table(reports, lang),
        waste_banks_table(reports, lang, labels),
        data_quality_table(reports, lang),
    ]


def _csv_cell(value: Any, locale: CsvLocale) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and locale == "id":
        return repr(value).replace(".", ",")
    return value


def _csv_line(cells: list[Any], locale: CsvLocale) -> str:
    buf = io.StringIO()
    csv.writer(buf, delimiter=";" if locale == "id" else ",", lineterminator="\r\n").writerow(
        [_csv_cell(c, locale) for c in cells]
    )
    return buf.getvalue()


async def _stream(table: Table, lang: Lang, locale: CsvLocale) -> AsyncIterator[str]:
    yield "\ufeff" + _csv_line([c.header(lang) for c in table.columns], locale)
    for row in table.rows:
        yield _csv_line(row, locale)
    if table.totals is not None:
        yield _csv_line(table.totals, locale)


def _csv_response(table: Table, lang: Lang, locale: CsvLocale, name: str) -> StreamingResponse:
    return StreamingResponse(
        _stream(table, lang, locale),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/exports/monthly.csv",
    summary="Monthly tonnage or the national report as CSV (UTF-8 with BOM)",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
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
        Literal["tonnage", "national"],
        Query(description="tonnage, or the national A–E terms with each month's coverage."),
    ] = "tonnage",
    lang: LangQuery = "id",
    locale: LocaleQuery = "en",
) -> StreamingResponse:
    """One row per month × group and a totals row; numbers identical to `/v1/tonnage?bucket=month`
    (national layout: to `/v1/reports/national`)."""
    first, end = parse_month_range(month, to_month)
    if layout == "national":
        table = national_table(await reports_for(conn, city, first, end), lang)
    else:
        labels = await labels_of(conn)
        coverage = await coverages_for(conn, city, first, end)
        table = await grouping_table(conn, city, first, end, group_by, lang, labels, coverage)
    what = layout if layout == "national" else group_by
    return _csv_response(table, lang, locale, f"pisman_{city.city_id}_{first:%Y-%m}_{what}.csv")


def build_xlsx(tables: list[Table], title: str, lang: Lang) -> bytes:
    """The workbook: one sheet per table, header, each cell formatted by its column's type,
    totals in bold, frozen header."""
    buf = io.BytesIO()
    wb = xlsxwriter.Workbook(buf, {"in_memory": True})
    head = wb.add_format(
        {"bold": True, "bg_color": "#DDEBF7", "border": 1, "text_wrap": True, "valign": "top"}
    )
    formats: dict[tuple[str, bool], Any] = {}

    def fmt(column: Column, total: bool) -> Any:
        key = (column.number_format, total)
        if key not in formats:
            spec: dict[str, Any] = {"bold": True, "top": 1} if total else {}
            if column.number_format != "General":
                spec["num_format"] = column.number_format
            formats[key] = wb.add_format(spec)
        return formats[key]

    for table in tables:
        name = xc.sheet_name(table.key, lang)
        ws = wb.add_worksheet(name[:31])
        ws.write(0, 0, f"{title} — {name}", wb.add_format({"bold": True, "font_size": 12}))
        ws.write_row(1, 0, [c.header(lang) for c in table.columns], head)
        for i, row in enumerate(table.rows):
            for j, cell in enumerate(row):
                if cell is None:
                    ws.write_blank(i + 2, j, None, fmt(table.cell_type(i, j), False))
                else:
                    ws.write(i + 2, j, cell, fmt(table.cell_type(i, j), False))
        if table.totals is not None:
            r = len(table.rows) + 2
            for j, cell in enumerate(table.totals):
                ws.write(r, j, "" if cell is None else cell, fmt(table.columns[j], True))
        ws.freeze_panes(2, 0)
        ws.set_column(0, 0, 40 if table.row_types else 16)
        ws.set_column(1, len(table.columns) - 1, 16)
    wb.close()
    return buf.getvalue()


def _xlsx_response(body: bytes, name: str) -> Response:
    return Response(
        body,
        media_type=XLSX_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/exports/monthly.xlsx",
    summary="Monthly report as XLSX: one sheet per grouping plus the national report",
    response_class=Response,
    responses=XLSX_RESPONSE,
)
async def export_xlsx(
    conn: Conn,
    key: PlannerKey,
    city: CityDep,
    month: Annotated[str, Query(description="First month YYYY-MM.", examples=["2026-10"])],
    to_month: Annotated[str | None, Query(description="Last month YYYY-MM (inclusive).")] = None,
    lang: LangQuery = "id",
) -> Response:
    """Sheets (Indonesian names; English with lang=en): category, district, site, material,
    national (with coverage), landfill, facilities, waste_banks, data_quality."""
    first, end = parse_month_range(month, to_month)
    labels = await labels_of(conn)
    reports = await reports_for(conn, city, first, end)
    coverage = {m.month: m.coverage for m in reports}
    tables = [
        await grouping_table(conn, city, first, end, g, lang, labels, coverage)
        for g in EXPORT_GROUPS
    ]
    tables += report_tables(reports, lang, labels)
    last = date(end.year - (end.month == 1), (end.month - 2) % 12 + 1, 1)
    title = f"{city.name}: {first:%Y-%m}" + (f" – {last:%Y-%m}" if last != first else "")
    body = await asyncio.to_thread(build_xlsx, tables, title, lang)
    return _xlsx_response(body, f"pisman_{city.city_id}_{first:%Y-%m}_{lang}.xlsx")


@router.get(
    "/exports/annual.xlsx",
    summary="A year as XLSX: the national terms with months as columns, then the monthly sheets",
    response_class=Response,
    responses=XLSX_RESPONSE,
)
async def export_annual_xlsx(
    conn: Conn,
    key: PlannerKey,
    city: CityDep,
    year: Annotated[str, Query(description="Year YYYY.", examples=["2026"])],
    lang: LangQuery = "id",
) -> Response:
    """First sheet: one row per national term, one column per month (with its coverage status)
    and the year's column (exact sums; shares over the covered A; months not begun count
    nowhere). Then the sheets of the monthly export for January to December."""
    y = parse_year("year", year)
    first, end = date(y, 1, 1), date(y + 1, 1, 1)
    reports = await year_reports(conn, city_id=city.city_id, tz=city.tz, year=y)
    labels = await labels_of(conn)
    tables = [annual_table(reports, y, lang)]
    coverage = {m.month: m.coverage for m in reports}
    tables += [
        await grouping_table(conn, city, first, end, g, lang, labels, coverage)
        for g in EXPORT_GROUPS
    ]
    tables += report_tables(reports, lang, labels)
    body = await asyncio.to_thread(build_xlsx, tables, f"{city.name}: {y}", lang)
    return _xlsx_response(body, f"pisman_{city.city_id}_{y}_{lang}.xlsx")


@router.get(
    "/exports/annual.csv",
    summary="A year's national terms as CSV, months as columns (UTF-8 with BOM)",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE,
)
async def export_annual_csv(
    conn: Conn,
    key: PlannerKey,
    city: CityDep,
    year: Annotated[str, Query(description="Year YYYY.", examples=["2026"])],
    lang: LangQuery = "id",
    locale: LocaleQuery = "en",
) -> StreamingResponse:
    """The annual sheet of `annual.xlsx`: equal to `/v1/reports/national?year=`."""
    y = parse_year("year", year)
    reports = await year_reports(conn, city_id=city.city_id, tz=city.tz, year=y)
    return _csv_response(
        annual_table(reports, y, lang), lang, locale, f"pisman_{city.city_id}_{y}_national.csv"
    )
