"""Reports: pick a month and a grouping, see the table, download the API's CSV or XLSX export."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import format as fmt
from dashboard.client import ApiRefused, ApiUnavailable, Meta, get_client
from dashboard.i18n import Lang, as_lang, label, t
from dashboard.states import api_problem, no_data
from dashboard.tables import table
from pisman.settings import get_settings

dash.register_page(__name__, path="/reports", name="Reports", order=3)

GROUPINGS = ("category", "district", "site", "material")
MONTHS_OFFERED = 24
# The dropdowns offer only good values, but a callback request can carry anything.
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$", re.ASCII)
MIN_YEAR, MAX_YEAR = 1970, 2200


def _this_month() -> date:
    return datetime.now(get_settings().tz).date().replace(day=1)


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


def layout(month: str | None = None, group: str | None = None, **_query: Any) -> html.Div:
    """The page; ?month=YYYY-MM&group=district preselect (links can be shared)."""
    months = _months(_this_month())
    return html.Div(
        [
            html.Div(
                [
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
                    html.Button(id="download-csv", n_clicks=0, className="button"),
                    html.Button(id="download-xlsx", n_clicks=0, className="button"),
                ],
                className="controls",
            ),
            dcc.Download(id="report-download"),
            html.Div(id="report-download-status"),
            html.Div(id="report-body", className="loading-placeholder"),
        ],
        className="page page-reports",
    )


def _group_label(row: dict[str, Any], group: str, meta: Meta, lang: Lang) -> tuple[str, str]:
    """(key, label) of a tonnage row for the grouping."""
    key = str(row.get(group) if row.get(group) is not None else row.get(f"{group}_id"))
    if group == "category":
        return key, label(meta.categories, key, lang)
    if group == "material":
        return key, label(meta.materials, key, lang)
    return key, str(row.get(f"{group}_name") or key)


@callback(
    Output("report-body", "children"),
    Output("report-month-label", "children"),
    Output("report-group-label", "children"),
    Output("report-group", "options"),
    Output("download-csv", "children"),
    Output("download-xlsx", "children"),
    Input("lang", "data"),
    Input("report-month", "value"),
    Input("report-group", "value"),
)
def render_report(stored_lang: str | None, month: object, group: object) -> tuple[Any, ...]:
    """The month's tonnage per group, exactly as /v1/tonnage (bucket=month) gives it."""
    lang = as_lang(stored_lang)
    chrome = (
        t("month", lang),
        t("group_by", lang),
        [{"label": t(f"group_{g}", lang), "value": g} for g in GROUPINGS],
        t("download_csv", lang),
        t("download_xlsx", lang),
    )
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
    if not result.rows:
        return (no_data(lang), *chrome)
    labelled = [
        (*_group_label(row, group, meta, lang), float(row.get("tonnes") or 0.0))
        for row in result.rows
    ]
    if group == "category":
        order = {code: i for i, code in enumerate(("reduce", "utilize", "residual", "separate"))}
        labelled.sort(key=lambda item: order.get(item[0], len(order)))
    else:
        labelled.sort(key=lambda item: -item[2])
    body = html.Div(
        [
            html.H2(f"{t('report_title', lang)} {month}"),
            table(
                [t(f"group_{group}", lang), t("tonnes", lang)],
                [[name, fmt.tonnes(tonnes, lang, 3)] for _key, name, tonnes in labelled],
                table_id="report-table",
                row_ids=[f"report-row-{key}" for key, _name, _t in labelled],
                numeric_columns=(1,),
                footer=[t("total", lang), fmt.tonnes(result.total_tonnes, lang, 3)],
            ),
            html.P(t("fates_note", lang), className="note") if group == "category" else None,
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
    prevent_initial_call=True,
)
def download_export(
    _csv: int, _xlsx: int, month: object, group: object, stored_lang: str | None
) -> tuple[Any, Any]:
    """Fetch the export from the API (the dashboard's planner key) and hand it to the browser."""
    lang = as_lang(stored_lang)
    bounds = month_bounds(month)
    if bounds is None or group not in GROUPINGS:
        return no_update, _bad_choice(lang)
    fmt_name = "xlsx" if dash.ctx.triggered_id == "download-xlsx" else "csv"
    try:
        export = get_client().export(month=f"{bounds[0]:%Y-%m}", group_by=group, fmt=fmt_name)
    except ApiRefused as exc:
        if exc.status in (401, 403):
            return no_update, html.Div(
                t("download_forbidden", lang),
                id="download-error",
                className="state state-error",
                role="alert",
            )
        return no_update, api_problem(exc, lang)
    except ApiUnavailable as exc:
        return no_update, api_problem(exc, lang)
    return dcc.send_bytes(export.content, export.filename), None
