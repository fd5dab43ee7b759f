"""Collection plan: tomorrow's truck routes on the map and per truck, from GET /v1/collection-plan."""

from __future__ import annotations

import math
from datetime import date, timedelta
from typing import Any, Literal

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html

from dashboard import format as fmt
from dashboard.auth import can_export
from dashboard.client import ApiRefused, ApiUnavailable, get_client
from dashboard.i18n import Lang, as_lang, t
from dashboard.states import api_problem, send_download
from dashboard.tables import table
from pisman.contract import PLAN_REASON_TEXT, PlanAnswer

dash.register_page(__name__, path="/collection", name="Collection plan", order=4)

ROUTE_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d")


def _choice(day_text: Any, pool: Any) -> tuple[date | None, str | None]:
    """The picked date and pool; values no picker offers (a hand-made request) fall back to the
    defaults (tomorrow, every pool)."""
    try:
        day = date.fromisoformat(day_text[:10]) if isinstance(day_text, str) and day_text else None
    except ValueError:
        day = None
    if not isinstance(pool, str) or not pool or len(pool) > 64:
        pool = None
    return day, pool


def layout(**_query: Any) -> html.Div:
    """The page: date and pool; the plan arrives through the callback."""
    tomorrow = get_client().today() + timedelta(days=1)
    return html.Div(
        [
            html.Div(
                [
                    html.Label(id="plan-date-label", htmlFor="plan-date"),
                    dcc.DatePickerSingle(
                        id="plan-date",
                        date=tomorrow.isoformat(),
                        display_format=fmt.DATE_PICKER_FORMAT["id"],
                    ),
                    html.Label(id="plan-pool-label", htmlFor="plan-pool"),
                    dcc.Dropdown(
                        id="plan-pool", options=[], value=None, clearable=True, className="dropdown"
                    ),
                    # The plan is for planners and admins: hidden for viewers (and the API
                    # refuses a viewer's session anyway). Both files come through the user's
                    # own session, like the reports page's exports.
                    html.Button(
                        id="plan-download-xlsx",
                        n_clicks=0,
                        className="button",
                        hidden=not can_export(),
                    ),
                    html.Button(
                        id="plan-download-print",
                        n_clicks=0,
                        className="button",
                        hidden=not can_export(),
                    ),
                ],
                className="controls plan-controls",
            ),
            dcc.Download(id="plan-download"),
            html.Div(id="plan-download-status"),
            dcc.Loading(html.Div(id="plan-body", className="loading-placeholder")),
        ],
        className="page page-collection",
    )


def route_map(plan: PlanAnswer, lang: Lang) -> go.Figure:
    """Each truck's route as a line from its pool through its depots, on a blank background."""
    fig = go.Figure()
    pools = {p.id: p for p in plan.pools}
    lf = plan.landfill
    for i, truck in enumerate(plan.trucks):
        pool = pools.get(truck.pool_id)
        lats: list[float | None] = []
        lons: list[float | None] = []
        text: list[str] = []
        if pool:
            lats.append(pool.lat)
            lons.append(pool.lon)
            text.append(f"{pool.name}<br>{truck.truck_id} {truck.start}")
        for trip in truck.trips:
            for s in trip.stops:
                lats.append(s.lat)
                lons.append(s.lon)
                text.append(
                    f"{truck.truck_id} · {t('trip', lang)} {trip.number} · {s.order}<br>{s.site_name}"
                    f"<br>{s.kelurahan or s.district_name}<br>{fmt.percent(s.expected_fill_pct / 100, lang, 0)}"
                    f" · {s.arrival}"
                )
            # The road to the landfill leaves the frame: break the line there.
            lats.append(None)
            lons.append(None)
            text.append("")
        fig.add_trace(
            go.Scattermap(
                lat=lats,
                lon=lons,
                mode="lines+markers",
                name=truck.truck_id,
                text=text,
                hovertemplate="%{text}<extra></extra>",
                line={"width": 2, "color": ROUTE_COLOURS[i % len(ROUTE_COLOURS)]},
                marker={"size": 8, "color": ROUTE_COLOURS[i % len(ROUTE_COLOURS)]},
            )
        )
    if pools:
        fig.add_trace(
            go.Scattermap(
                lat=[p.lat for p in pools.values()],
                lon=[p.lon for p in pools.values()],
                mode="markers",
                name=t("pool", lang),
                text=[p.name for p in pools.values()],
                hovertemplate="%{text}<extra></extra>",
                marker={"size": 14, "color": "#222"},
            )
        )
    points = [(s.lat, s.lon) for tr in plan.trucks for tp in tr.trips for s in tp.stops]
    points += [(p.lat, p.lon) for p in pools.values()]
    lats_all = [p[0] for p in points] or [lf.lat if lf else -6.92]
    lons_all = [p[1] for p in points] or [lf.lon if lf else 107.61]
    span = max(max(lats_all) - min(lats_all), max(lons_all) - min(lons_all), 0.01)
    fig.update_layout(
        height=480,
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        separators=fmt.PLOTLY_SEPARATORS[lang],
        showlegend=len(plan.trucks) <= 20,
        # "white-bg": MapLibre's blank style, nothing fetched from a tile server.
        map={
            "style": "white-bg",
            "center": {
                "lat": (max(lats_all) + min(lats_all)) / 2,
                "lon": (max(lons_all) + min(lons_all)) / 2,
            },
            "zoom": max(1.0, min(14.0, math.log2(360 / span) - 1.2)),
        },
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def _summary(plan: PlanAnswer, lang: Lang) -> html.Div:
    s = plan.summary
    items = [
        (
            t("plan_trucks", lang),
            f"{fmt.count(s.trucks_used, lang)} / {fmt.count(s.trucks_available, lang)}",
        ),
        (t("plan_trips", lang), fmt.count(s.trips, lang)),
        (t("plan_km", lang), fmt.count(round(s.km), lang)),
        (t("plan_tonnes", lang), fmt.tonnes(s.load_t, lang)),
        (t("plan_uncovered", lang), fmt.count(s.uncovered, lang)),
    ]
    return html.Div(
        [
            html.Div([html.Span(k, className="label"), html.Strong(v)], className="kpi")
            for k, v in items
        ],
        id="plan-summary",
        className="kpis",
    )


def _truck_table(plan: PlanAnswer, lang: Lang) -> Any:
    rows = [
        [
            truck.truck_id,
            str(trip.number),
            str(s.order),
            s.site_name,
            s.kelurahan or "–",
            s.district_name,
            fmt.percent(s.expected_fill_pct / 100, lang, 0),
            f"{s.window_start}–{s.window_end}",
            s.arrival + (f" (+{s.late_min} {t('minutes_short', lang)})" if s.late_min else ""),
        ]
        for truck in plan.trucks
        for trip in truck.trips
        for s in trip.stops
    ]
    return table(
        [
            t("truck", lang),
            t("trip", lang),
            t("stop_order", lang),
            t("site", lang),
            "Kelurahan",
            t("district", lang),
            t("expected_fill", lang),
            t("time_window", lang),
            t("arrival", lang),
        ],
        rows,
        table_id="plan-stops",
        row_ids=[
            f"stop-{truck.truck_id}-{trip.number}-{s.order}"
            for truck in plan.trucks
            for trip in truck.trips
            for s in trip.stops
        ],
    )


def _uncovered_table(plan: PlanAnswer, districts: dict[str, str], lang: Lang) -> Any:
    """Depots not in the plan: the district by name, the reason in the page's language."""
    if not plan.uncovered:
        return html.P(
            t("plan_all_covered", lang), id="plan-all-covered", className="state state-ok"
        )
    return table(
        [t("site", lang), t("district", lang), t("expected_fill", lang), t("reason", lang)],
        [
            [
                u.site_name,
                districts.get(u.district_id, u.district_id),
                fmt.percent(u.expected_fill_pct / 100, lang, 0)
                if u.expected_fill_pct is not None
                else "–",
                PLAN_REASON_TEXT[u.reason_code][0 if lang == "id" else 1],
            ]
            for u in plan.uncovered
        ],
        table_id="plan-uncovered",
        row_ids=[f"uncovered-{u.site_id}" for u in plan.uncovered],
    )


@callback(
    Output("plan-body", "children"),
    Output("plan-pool", "options"),
    Output("plan-date-label", "children"),
    Output("plan-pool-label", "children"),
    Output("plan-pool", "placeholder"),
    Output("plan-download-xlsx", "children"),
    Output("plan-download-print", "children"),
    Input("lang", "data"),
    Input("plan-date", "date"),
    Input("plan-pool", "value"),
)
def render_plan(
    stored_lang: str | None, day_text: Any, pool: Any
) -> tuple[Any, list[dict[str, str]], str, str, str, str, str]:
    """Ask the API for the day's plan and draw it (no live refresh: a plan is a daily thing)."""
    lang = as_lang(stored_lang)
    labels = (
        t("plan_date", lang),
        t("pool", lang),
        t("all_pools", lang),
        t("download_xlsx", lang),
        t("plan_print", lang),
    )
    day, pool = _choice(day_text, pool)
    try:
        plan = get_client().collection_plan(day=day, pool=pool)
    except (ApiUnavailable, ApiRefused) as exc:
        if isinstance(exc, ApiRefused) and exc.status == 403:
            notice = html.Div(
                t("plan_role_needed", lang), id="api-error", className="state state-error"
            )
            return notice, [], *labels
        return api_problem(exc, lang), [], *labels
    options = [{"label": p.name, "value": p.id} for p in plan.pools]
    try:
        districts = {d.district_id: d.name for d in get_client().meta().districts}
    except (ApiUnavailable, ApiRefused):  # the plan is drawn; ids stand in for names
        districts = {}
    messages = [html.P(m, className="state state-empty") for m in plan.messages]
    body = html.Div(
        [
            *messages,
            _summary(plan, lang),
            dcc.Graph(
                id="plan-map", figure=route_map(plan, lang), config={"displayModeBar": False}
            ),
            html.Div([html.H2(t("plan_stops", lang)), _truck_table(plan, lang)], className="panel"),
            html.Div(
                [html.H2(t("plan_not_covered", lang)), _uncovered_table(plan, districts, lang)],
                className="panel",
            ),
        ]
    )
    return body, options, *labels


@callback(
    Output("plan-download", "data"),
    Output("plan-download-status", "children"),
    Input("plan-download-xlsx", "n_clicks"),
    Input("plan-download-print", "n_clicks"),
    State("plan-date", "date"),
    State("plan-pool", "value"),
    State("lang", "data"),
    prevent_initial_call=True,
)
def download_plan(
    _xlsx: int, _print: int, day_text: Any, pool: Any, stored_lang: str | None
) -> tuple[Any, Any]:
    """Fetch the plan's XLSX or its printable page (one truck per sheet) from the API with the
    user's session and hand it to the browser."""
    lang = as_lang(stored_lang)
    kind: Literal["xlsx", "print"] = (
        "print" if dash.ctx.triggered_id == "plan-download-print" else "xlsx"
    )
    day, pool = _choice(day_text, pool)
    return send_download(
        lambda: get_client().collection_plan_file(kind, day=day, pool=pool),
        lang,
        forbidden="plan_download_forbidden",
    )
