"""Collection plan: tomorrow's truck routes on the map and per truck, from GET /v1/collection-plan."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any, Literal

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html

from dashboard import format as fmt
from dashboard.auth import can_export
from dashboard.client import ApiRefused, ApiUnavailable, get_client
from dashboard.i18n import Lang, as_lang, request_lang, t
from dashboard.maps import Frame, Place, map_layout, outlines, point_off_frame
from dashboard.states import api_problem, send_download
from dashboard.tables import table
from pisman.contract import (
    PLAN_REASON_TEXT,
    DistrictBoundariesAnswer,
    PlanAnswer,
    PlanPlace,
    PlanTruck,
)

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
                        display_format=fmt.DATE_PICKER_FORMAT[request_lang()],
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


def _plan_frame(plan: PlanAnswer, boundaries: DistrictBoundariesAnswer | None) -> Frame:
    """The districts' outlines when the city has them, else the plan's depots and pools (the
    landfill gate, usually outside the city, is pointed at from the frame's edge)."""
    if boundaries is not None and boundaries.bbox is not None:
        min_lon, min_lat, max_lon, max_lat = boundaries.bbox
        return Frame.around([min_lon, max_lon], [min_lat, max_lat])
    points = [(s.lon, s.lat) for tr in plan.trucks for tp in tr.trips for s in tp.stops]
    points += [(p.lon, p.lat) for p in plan.pools]
    if not points:
        lf = plan.landfill
        points = [(lf.lon, lf.lat) if lf else (107.61, -6.92)]
    return Frame.around([p[0] for p in points], [p[1] for p in points])


def _route_trace(truck: PlanTruck, pool: PlanPlace | None, colour: str, lang: Lang) -> go.Scatter:
    """One truck's day as a line from its pool through its depots, broken after each trip (the
    road to the landfill leaves the frame)."""
    lons: list[float | None] = []
    lats: list[float | None] = []
    text: list[str] = []
    if pool:
        lons.append(pool.lon)
        lats.append(pool.lat)
        text.append(f"{pool.name}<br>{truck.truck_id} {truck.start}")
    for trip in truck.trips:
        for s in trip.stops:
            lons.append(s.lon)
            lats.append(s.lat)
            text.append(
                f"{truck.truck_id} · {t('trip', lang)} {trip.number} · {s.order}<br>{s.site_name}"
                f"<br>{s.kelurahan or s.district_name}<br>{fmt.percent(s.expected_fill_pct / 100, lang, 0)}"
                f" · {s.arrival}"
            )
        lons.append(None)
        lats.append(None)
        text.append("")
    return go.Scatter(
        x=lons,
        y=lats,
        mode="lines+markers",
        name=truck.truck_id,
        meta=f"route:{truck.truck_id}",
        text=text,
        hovertemplate="%{text}<extra></extra>",
        line={"width": 2, "color": colour},
        marker={"size": 8, "color": colour},
    )


def route_map(
    plan: PlanAnswer, lang: Lang, boundaries: DistrictBoundariesAnswer | None = None
) -> go.Figure:
    """Each truck's route over the city's district outlines, drawn like the districts page's map
    (plain SVG on longitude/latitude axes: no tiles, no WebGL)."""
    frame = _plan_frame(plan, boundaries)
    pools = {p.id: p for p in plan.pools}
    fig = go.Figure()
    if boundaries is not None:
        for shape in outlines(boundaries):
            fig.add_trace(shape)
    for i, truck in enumerate(plan.trucks):
        colour = ROUTE_COLOURS[i % len(ROUTE_COLOURS)]
        fig.add_trace(_route_trace(truck, pools.get(truck.pool_id), colour, lang))
    if pools:
        fig.add_trace(
            go.Scatter(
                x=[p.lon for p in pools.values()],
                y=[p.lat for p in pools.values()],
                mode="markers",
                name=t("pool", lang),
                meta="pools",
                text=[p.name for p in pools.values()],
                hovertemplate="%{text}<extra></extra>",
                marker={"size": 14, "color": "#222", "symbol": "square"},
            )
        )
    lf = plan.landfill
    if lf is not None and not frame.holds(lf.lon, lf.lat):
        point_off_frame(fig, [Place(lf.id, lf.name, lf.lon, lf.lat)], frame, lang)
    map_layout(fig, frame, lang)
    fig.update_layout(height=480, showlegend=len(plan.trucks) <= 20)
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
    Output("plan-date", "display_format"),
    Input("lang", "data"),
    Input("plan-date", "date"),
    Input("plan-pool", "value"),
)
def render_plan(
    stored_lang: str | None, day_text: Any, pool: Any
) -> tuple[Any, list[dict[str, str]], str, str, str, str, str, str]:
    """Ask the API for the day's plan and draw it (no live refresh: a plan is a daily thing)."""
    lang = as_lang(stored_lang)
    labels = (
        t("plan_date", lang),
        t("pool", lang),
        t("all_pools", lang),
        t("download_xlsx", lang),
        t("plan_print", lang),
        fmt.DATE_PICKER_FORMAT[lang],
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
    try:
        boundaries: DistrictBoundariesAnswer | None = get_client().district_boundaries()
    except (ApiUnavailable, ApiRefused):  # the routes are drawn without the outlines
        boundaries = None
    messages = [html.P(m, className="state state-empty") for m in plan.messages]
    body = html.Div(
        [
            *messages,
            _summary(plan, lang),
            dcc.Graph(
                id="plan-map",
                figure=route_map(plan, lang, boundaries),
                config={"displayModeBar": False},
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
