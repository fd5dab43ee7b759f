"""Districts: a tile-less map of sites coloured by tonnage or bin fill, a per-district table and bars."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, Output, callback, dcc, html

from dashboard import format as fmt
from dashboard.client import ApiRefused, ApiUnavailable, get_client
from dashboard.format import label
from dashboard.i18n import Lang, as_lang, t
from dashboard.states import api_problem, no_data
from dashboard.tables import table
from pisman.contract import Bin, MetaAnswer, Site, TonnageAnswer, TonnageTotal
from pisman.settings import get_settings

dash.register_page(__name__, path="/districts", name="Districts", order=1)

FATES = ("reduce", "utilize", "residual")
CATEGORY_COLOURS = {"reduce": "#2e7d32", "utilize": "#f9a825", "residual": "#6d4c41"}


def layout(**_query: Any) -> html.Div:
    """The page: a colour-by switch; the rest arrives through the refresh callback."""
    return html.Div(
        [
            html.Div(
                [
                    html.Label(id="districts-colour-label", htmlFor="districts-colour"),
                    dcc.RadioItems(
                        id="districts-colour",
                        value="tonnage",
                        inline=True,
                        options=[
                            {"label": "t", "value": "tonnage"},
                            {"label": "%", "value": "fill"},
                        ],
                    ),
                ],
                className="controls",
            ),
            html.Div(id="districts-body", className="loading-placeholder"),
        ],
        className="page page-districts",
    )


def month_range(today: date) -> tuple[date, date]:
    """Month to date as [first of the month, tomorrow)."""
    return today.replace(day=1), today + timedelta(days=1)


def _row_key(row: TonnageTotal, group: str) -> str:
    """The group column of a tonnage row (`district` or `site`)."""
    return str(getattr(row, group))


def _robust_max(values: list[float]) -> float | None:
    """The 95th percentile: one huge site (the landfill gate) must not wash out the others' colours."""
    positive = sorted(v for v in values if v > 0)
    if len(positive) < 20:
        return None
    return positive[int(0.95 * (len(positive) - 1))]


def _site_map(sites: list[Site], values: dict[str, float], colour_by: str, lang: Lang) -> go.Figure:
    """Sites as dots on a blank background: no tiles, no fonts, nothing fetched from the internet."""
    located = [s for s in sites if s.lat is not None and s.lon is not None]
    unit = "t" if colour_by == "tonnage" else "%"
    colours = [values.get(s.site_id, 0.0) for s in located]
    hover = [
        f"{s.name}<br>{s.district_name or s.district_id}<br>"
        + (
            fmt.tonnes(values.get(s.site_id, 0.0), lang)
            if colour_by == "tonnage"
            else fmt.percent(values[s.site_id] / 100, lang)
            if s.site_id in values
            else "–"
        )
        for s in located
    ]
    fig = go.Figure(
        go.Scattermap(
            lat=[s.lat for s in located],
            lon=[s.lon for s in located],
            mode="markers",
            text=hover,
            hovertemplate="%{text}<extra></extra>",
            marker={
                "size": 13,
                "color": colours,
                "colorscale": "YlOrRd" if colour_by == "fill" else "Viridis",
                "cmin": 0,
                "cmax": 100 if colour_by == "fill" else _robust_max(colours),
                "showscale": True,
                "colorbar": {"title": {"text": unit}, "thickness": 12},
            },
        )
    )
    # Frame the city's own sites: the landfill gate usually lies outside the city and would
    # shrink every other site to one clump.
    framed = [s for s in located if s.site_type != "landfill"] or located
    lats = [s.lat for s in framed if s.lat is not None] or [-6.92]
    lons = [s.lon for s in framed if s.lon is not None] or [107.61]
    span = max(max(lats) - min(lats), max(lons) - min(lons), 0.01)
    # "white-bg" is MapLibre's blank style: no tiles, no glyphs, nothing fetched from the internet.
    fig.update_layout(
        height=460,
        margin={"l": 0, "r": 0, "t": 0, "b": 0},
        separators=fmt.PLOTLY_SEPARATORS[lang],
        map={
            "style": "white-bg",
            "center": {"lat": (max(lats) + min(lats)) / 2, "lon": (max(lons) + min(lons)) / 2},
            "zoom": max(1.0, min(14.0, math.log2(360 / span) - 1.2)),
        },
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def _district_bars(
    names: dict[str, str], by_district: dict[str, dict[str, float]], meta: MetaAnswer, lang: Lang
) -> go.Figure:
    order = sorted(names, key=lambda d: -sum(by_district.get(d, {}).get(c, 0.0) for c in FATES))
    fig = go.Figure()
    for code in FATES:
        fig.add_bar(
            x=[names[d] for d in order],
            y=[by_district.get(d, {}).get(code, 0.0) for d in order],
            name=label(meta.categories, code, lang),
            marker_color=CATEGORY_COLOURS[code],
            hovertemplate="%{x}: %{y:,.1f} t<extra>%{fullData.name}</extra>",
        )
    fig.update_layout(
        barmode="stack",
        height=360,
        margin={"l": 50, "r": 10, "t": 10, "b": 110},
        separators=fmt.PLOTLY_SEPARATORS[lang],
        legend={"orientation": "h", "y": 1.08},
        yaxis={"title": {"text": "t"}, "tickformat": ",.0f"},
        plot_bgcolor="#fff",
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def _district_table(
    names: dict[str, str],
    by_district: dict[str, dict[str, float]],
    site_counts: dict[str, int],
    full_bins: dict[str, int],
    meta: MetaAnswer,
    lang: Lang,
) -> html.Table:
    headers = [
        t("district", lang),
        t("sites", lang),
        *(label(meta.categories, c, lang) for c in FATES),
        t("bins_to_empty", lang),
    ]
    rows, ids = [], []
    for district_id, name in sorted(names.items(), key=lambda item: item[1]):
        figures = by_district.get(district_id, {})
        sites = site_counts.get(district_id, 0)
        rows.append(
            [
                name,
                fmt.count(sites, lang) if sites else t("no_sites", lang),
                *(fmt.tonnes(figures.get(c, 0.0), lang) for c in FATES),
                fmt.count(full_bins.get(district_id, 0), lang),
            ]
        )
        ids.append(f"district-row-{district_id}")
    totals = [
        t("total", lang),
        fmt.count(sum(site_counts.values()), lang),
        *(fmt.tonnes(sum(f.get(c, 0.0) for f in by_district.values()), lang) for c in FATES),
        fmt.count(sum(full_bins.values()), lang),
    ]
    return table(
        headers,
        rows,
        table_id="district-table",
        row_ids=ids,
        numeric_columns=(1, 2, 3, 4, 5),
        footer=totals,
    )


def _today() -> date:
    return datetime.now(get_settings().tz).date()


@callback(
    Output("districts-body", "children"),
    Output("districts-colour-label", "children"),
    Output("districts-colour", "options"),
    Input("lang", "data"),
    Input("tick", "n_intervals"),
    Input("districts-colour", "value"),
)
def render_districts(
    stored_lang: str | None, _tick: int, colour_by: str
) -> tuple[Any, str, list[dict[str, str]]]:
    """Fetch sites, tonnage per site and district, and bins; draw map, bars and table."""
    lang = as_lang(stored_lang)
    options = [
        {"label": t("by_tonnage", lang), "value": "tonnage"},
        {"label": t("by_fill", lang), "value": "fill"},
    ]
    client = get_client()
    start, end = month_range(_today())
    try:
        meta = client.meta()
        sites = client.sites()
        per_site: TonnageAnswer = client.tonnage(
            start=start, end=end, bucket="total", group_by="site"
        )
        per_district: TonnageAnswer = client.tonnage(
            start=start, end=end, bucket="total", group_by="district,category"
        )
        bins: list[Bin] = client.bins()
    except (ApiUnavailable, ApiRefused) as exc:
        return api_problem(exc, lang), t("colour_by", lang), options

    names = {d.district_id: d.name for d in meta.districts}
    by_district: dict[str, dict[str, float]] = defaultdict(dict)
    for row in per_district.rows:
        by_district[_row_key(row, "district")][str(row.category)] = row.tonnes
    site_counts: dict[str, int] = defaultdict(int)
    for site in sites:
        site_counts[site.district_id] += 1
        names.setdefault(site.district_id, site.district_name or site.district_id)
    full_bins: dict[str, int] = defaultdict(int)
    fill_by_site: dict[str, float] = {}
    for b in bins:
        if b.needs_collection and b.district_id:
            full_bins[b.district_id] += 1
        if b.fill_pct is not None:
            fill_by_site[b.site_id] = max(fill_by_site.get(b.site_id, 0.0), b.fill_pct)
    tonnes_by_site = {_row_key(r, "site"): r.tonnes for r in per_site.rows}

    body: list[Any] = []
    if not sites:
        body.append(no_data(lang))
    values = tonnes_by_site if colour_by == "tonnage" else fill_by_site
    body += [
        html.Div(
            [
                html.H2(t("map_title", lang)),
                dcc.Graph(
                    id="districts-map",
                    figure=_site_map(sites, values, colour_by, lang),
                    config={"displayModeBar": False},
                ),
            ],
            className="panel",
        ),
        html.Div(
            [
                html.H2(t("district_table", lang)),
                dcc.Graph(
                    id="districts-bars",
                    figure=_district_bars(names, by_district, meta, lang),
                    config={"displayModeBar": False},
                ),
                _district_table(names, by_district, site_counts, full_bins, meta, lang),
            ],
            className="panel",
        ),
    ]
    return html.Div(body), t("colour_by", lang), options
