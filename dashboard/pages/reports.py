"""Reports: a month (tonnage by grouping, national terms and coverage) or a year (national terms
by month); download the API's CSV or XLSX export in the page's language."""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import format as fmt
from dashboard.auth import can_export
from dashboard.client import ApiRefused, ApiUnavailable, get_client
from dashboard.format import label
from dashboard.i18n import Lang, as_lang, t
from dashboard.states import api_problem, no_data, send_download
from dashboard.tables import table
from pisman.contract import MetaAnswer, NationalMonthAnswer, TonnageTotal

dash.register_page(__name__, path="/reports", name="Reports", order=3)

GROUPINGS = ("category", "district", "site", "material")
PERIODS = ("month", "year")
MONTHS_OFFERED = 24
YEARS_OFFERED = 5
# The national terms shown, in SIPSN order: (key, kind).
TERMS = (
    ("A_t", "tonnes"),
    ("A_month_estimate_t", "tonnes"),
    ("B_t", "tonnes"),
    ("B_share", "percent"),
    ("C_t", "tonnes"),
    ("C_share", "percent"),
    ("managed_share", "percent"),
    ("unmanaged_t", "tonnes"),
    ("recycling_rate", "percent"),
)
# The dropdowns offer only good values, but a callback request can carry anything.
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$", re.ASCII)
MIN_YEAR, MAX_YEAR = 1970, 2200


def _this_month() -> date:
    """The first day of the chosen city's current month."""
    return get_client().today().replace(day=1)


def month_bounds(month: object) -> tuple[date, date] | None:
    """'2026-10' -> [2026-10-01, 2026-11-01); None for anything else a browser may send."""
    match = MONTH.match(month) if isinstance(month, str) else None
    if match is None or not MIN_YEAR <= int(match.group(1)) <= MAX_YEAR:
        return None
    start = date(int(match.group(1)), int(match.group(2)), 1)
    end = date(start.year + (start.month == 12), start.month % 12 + 1, 1)
    return start, end


def _bad_choice(lang: Lang) -> html.Div:
    return html.Div(
        t("bad_report_choice", lang),
        id="report-bad-choice",
        className="state state-error",
        role="alert",
    )


def _months(latest: date) -> list[str]:
    months, year, month = [], latest.year, latest.month
    for _ in range(MONTHS_OFFERED):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return months


def year_value(year: object) -> int | None:
    """A year a browser may send, or None."""
    if isinstance(year, int | str) and str(year).isdigit() and len(str(year)) == 4:
        value = int(year)
        return value if MIN_YEAR <= value <= MAX_YEAR else None
    return None


def layout(
    month: str | None = None,
    group: str | None = None,
    period: str | None = None,
    year: str | None = None,
    **_query: Any,
) -> html.Div:
    """The page; ?month=YYYY-MM&group=district (or ?period=year&year=2026) preselect."""
    months = _months(_this_month())
    years = [_this_month().year - i for i in range(YEARS_OFFERED)]
    chosen_year = year_value(year)
    return html.Div(
        [
            html.Div(
                [
                    html.Label(id="report-period-label", htmlFor="report-period"),
                    dcc.RadioItems(
                        id="report-period",
                        options=[{"label": p, "value": p} for p in PERIODS],
                        value=period if period in PERIODS else "month",
                        inline=True,
                        className="radio",
                    ),
                    html.Div(
                        [
                            html.Label(id="report-year-label", htmlFor="report-year"),
                            dcc.Dropdown(
                                id="report-year",
                                options=[{"label": str(y), "value": y} for y in years],
                                value=chosen_year if chosen_year in years else years[0],
                                clearable=False,
                                className="dropdown",
                            ),
                        ],
                        id="report-year-controls",
                        className="controls",
                        hidden=period != "year",
                    ),
                    html.Label(id="report-month-label", htmlFor="report-month"),
                    dcc.Dropdown(
                        id="report-month",
                        options=[{"label": m, "value": m} for m in months],
                        value=month if month in months else months[0],
                        clearable=False,
                        className="dropdown",
                    ),
                    html.Label(id="report-group-label", htmlFor="report-group"),
                    dcc.Dropdown(
                        id="report-group",
                        options=[{"label": g, "value": g} for g in GROUPINGS],
                        value=group if group in GROUPINGS else "category",
                        clearable=False,
                        className="dropdown",
                    ),
                    # Exports are for planners and admins: hidden for viewers (and the API
                    # refuses a viewer's session anyway).
                    html.Button(
                        id="download-csv", n_clicks=0, className="button", hidden=not can_export()
                    ),
                    html.Button(
                        id="download-xlsx", n_clicks=0, className="button", hidden=not can_export()
                    ),
                ],
                className="controls",
            ),
            dcc.Download(id="report-download"),
            html.Div(id="report-download-status"),
            html.Div(id="report-body", className="loading-placeholder"),
        ],
        className="page page-reports",
    )


def _group_label(row: TonnageTotal, group: str, meta: MetaAnswer, lang: Lang) -> tuple[str, str]:
    """(key, label) of a tonnage row for the grouping."""
    key = str(getattr(row, group))
    if group == "category":
        return key, label(meta.categories, key, lang)
    if group == "material":
        return key, label(meta.materials, key, lang)
    return key, str(getattr(row, f"{group}_name", None) or key)


def _term(value: float | None, kind: str, lang: Lang) -> str:
    if value is None:
        return "–"
    return fmt.percent(value, lang, 2) if kind == "percent" else fmt.tonnes(value, lang, 3)


def status_text(status: str | None, lang: Lang) -> str:
    """A month's coverage status in words."""
    return t(f"status_{status}", lang) if status else "–"


def coverage_block(report: NationalMonthAnswer, lang: Lang) -> html.Div:
    """Days with data, the status (partial, in progress) and the scales silent on some days."""
    cov = report.coverage
    line = t(
        "coverage_line",
        lang,
        status=status_text(report.status, lang),
        covered=report.days_with_data,
        days=report.days,
    )
    silent = cov.scales_silent_some_days
    parts: list[Any] = [html.Strong(line, id="report-coverage-status")]
    if silent:
        scales = ", ".join(f"{s.device} ({s.days_silent} {t('days_short', lang)})" for s in silent)
        parts.append(
            html.Div(t("silent_scales_days", lang, scales=scales), id="report-silent-scales")
        )
    flagged = report.status != "complete"
    return html.Div(
        parts,
        id="report-coverage",
        className="state state-warning" if flagged else "note",
        title=report.status or "",
    )


def national_month_table(report: NationalMonthAnswer, lang: Lang) -> html.Div:
    """The month's national terms (A for the days with data, labelled as an estimate)."""
    return html.Div(
        [
            html.H3(t("national_title", lang)),
            table(
                [t("indicator", lang), report.month],
                [
                    [t(f"term_{k}", lang), _term(getattr(report, k), kind, lang)]
                    for k, kind in TERMS
                ],
                table_id="report-national",
                row_ids=[f"report-national-{k}" for k, _ in TERMS],
                numeric_columns=(1,),
            ),
            html.P(t("a_note", lang), className="note"),
        ]
    )


def annual_view(year: int, lang: Lang) -> Any:
    """Months as columns, the national terms as rows, the year's column filled in."""
    try:
        report = get_client().national_year(year)
    except (ApiUnavailable, ApiRefused) as exc:
        return api_problem(exc, lang)
    months = report.months
    header = [
        t("indicator", lang),
        *(fmt.month(m.month, lang) for m in months),
        f"{t('year', lang)} {year}",
    ]
    annual_status = (
        t("status_partial_period", lang) if report.annual.partial else t("status_complete", lang)
    )
    rows = [[t("status", lang), *(status_text(m.status, lang) for m in months), annual_status]]
    rows.append(
        [
            t("days_with_data", lang),
            *(f"{m.days_with_data}/{m.days}" for m in months),
            f"{report.annual.days_with_data}/{report.annual.days}",
        ]
    )
    for key, kind in TERMS:
        rows.append(
            [
                t(f"term_{key}", lang),
                *(_term(getattr(m, key), kind, lang) for m in months),
                _term(getattr(report.annual, key), kind, lang),
            ]
        )
    return html.Div(
        [
            html.H2(f"{t('annual_title', lang)} {year}"),
            html.Div(
                table(
                    header,
                    rows,
                    table_id="report-annual",
                    row_ids=["report-annual-status", "report-annual-days"]
                    + [f"report-annual-{k}" for k, _ in TERMS],
                    numeric_columns=tuple(range(1, 14)),
                ),
                className="table-scroll",
            ),
            html.P(t("a_note", lang), className="note"),
        ]
    )


@callback(
    Output("report-body", "children"),
    Output("report-month-label", "children"),
    Output("report-group-label", "children"),
    Output("report-group", "options"),
    Output("report-month", "options"),
    Output("download-csv", "children"),
    Output("download-xlsx", "children"),
    Output("report-period-label", "children"),
    Output("report-period", "options"),
    Output("report-year-label", "children"),
    Output("report-year-controls", "hidden"),
    Input("lang", "data"),
    Input("report-month", "value"),
    Input("report-group", "value"),
    Input("report-period", "value"),
    Input("report-year", "value"),
)
def render_report(
    stored_lang: str | None,
    month: object,
    group: object,
    period: object = "month",
    year: object = None,
) -> tuple[Any, ...]:
    """The month's tonnage per group, exactly as /v1/tonnage (bucket=month) gives it, with the
    month's national terms and coverage; or the year's national terms by month."""
    lang = as_lang(stored_lang)
    chrome = (
        t("month", lang),
        t("group_by", lang),
        [{"label": t(f"group_{g}", lang), "value": g} for g in GROUPINGS],
        [{"label": fmt.month(m, lang), "value": m} for m in _months(_this_month())],
        t("download_csv", lang),
        t("download_xlsx", lang),
        t("period", lang),
        [{"label": t(f"period_{p}", lang), "value": p} for p in PERIODS],
        t("year", lang),
        period != "year",
    )
    if period == "year":
        chosen = year_value(year)
        if chosen is None:
            return (_bad_choice(lang), *chrome)
        return (annual_view(chosen, lang), *chrome)
    bounds = month_bounds(month)
    if bounds is None or group not in GROUPINGS:
        return (_bad_choice(lang), *chrome)
    start, end = bounds
    client = get_client()
    try:
        meta = client.meta()
        result = client.tonnage(start=start, end=end, bucket="month", group_by=group)
    except (ApiUnavailable, ApiRefused) as exc:
        return (api_problem(exc, lang), *chrome)
    national_parts: list[Any]
    try:
        national = client.national_month(f"{start:%Y-%m}")
        national_parts = [coverage_block(national, lang), national_month_table(national, lang)]
    except (ApiUnavailable, ApiRefused) as exc:
        national_parts = [api_problem(exc, lang)]
    if not result.rows:
        return (no_data(lang), *chrome)
    labelled = [(*_group_label(row, group, meta, lang), row.tonnes) for row in result.rows]
    if group == "category":
        order = {code: i for i, code in enumerate(("reduce", "utilize", "residual", "separate"))}
        labelled.sort(key=lambda item: order.get(item[0], len(order)))
    else:
        labelled.sort(key=lambda item: -item[2])
    body = html.Div(
        [
            html.H2(f"{t('report_title', lang)} {month}"),
            national_parts[0],
            table(
                [t(f"group_{group}", lang), t("tonnes", lang)],
                [[name, fmt.tonnes(tonnes, lang, 3)] for _key, name, tonnes in labelled],
                table_id="report-table",
                row_ids=[f"report-row-{key}" for key, _name, _t in labelled],
                numeric_columns=(1,),
                footer=[t("total", lang), fmt.tonnes(result.total_tonnes, lang, 3)],
            ),
            html.P(t("fates_note", lang), className="note") if group == "category" else None,
            *national_parts[1:],
        ]
    )
    return (body, *chrome)


@callback(
    Output("report-download", "data"),
    Output("report-download-status", "children"),
    Input("download-csv", "n_clicks"),
    Input("download-xlsx", "n_clicks"),
    State("report-month", "value"),
    State("report-group", "value"),
    State("lang", "data"),
    State("report-period", "value"),
    State("report-year", "value"),
    prevent_initial_call=True,
)
def download_export(
    _csv: int,
    _xlsx: int,
    month: object,
    group: object,
    stored_lang: str | None,
    period: object = "month",
    year: object = None,
) -> tuple[Any, Any]:
    """Fetch the export from the API (with the user's session), in the page's language, and
    hand it to the browser: the month's (by the grouping) or the year's."""
    lang = as_lang(stored_lang)
    fmt_name = "xlsx" if dash.ctx.triggered_id == "download-xlsx" else "csv"
    chosen_year = year_value(year) if period == "year" else None
    bounds = month_bounds(month)
    if period == "year" and chosen_year is None:
        return no_update, _bad_choice(lang)
    if chosen_year is None and (bounds is None or group not in GROUPINGS):
        return no_update, _bad_choice(lang)
    if chosen_year is not None:
        year_chosen = chosen_year
        return send_download(
            lambda: get_client().export(year=year_chosen, fmt=fmt_name, lang=lang),
            lang,
            forbidden="download_forbidden",
        )
    assert bounds is not None and isinstance(group, str)
    month_text, grouping = f"{bounds[0]:%Y-%m}", group
    return send_download(
        lambda: get_client().export(month=month_text, group_by=grouping, fmt=fmt_name, lang=lang),
        lang,
        forbidden="download_forbidden",
    )
