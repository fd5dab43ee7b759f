"""Districts: a tile-less map (district outlines shaded by a figure, sites on top), bars and a table."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import Any, NamedTuple

import dash
import plotly.graph_objects as go
from dash import Input, Output, callback, dcc, html
from plotly.colors import sample_colorscale

from dashboard import format as fmt
from dashboard.client import ApiClient, ApiRefused, ApiUnavailable, get_client
from dashboard.format import label
from dashboard.i18n import Lang, as_lang, t
from dashboard.maps import Frame, Place, district_shape, map_layout, point_off_frame
from dashboard.states import api_problem, no_data
from dashboard.tables import table
from pisman.contract import (
    Bin,
    DistrictBoundariesAnswer,
    MetaAnswer,
    Site,
    TonnageAnswer,
    TonnageTotal,
)

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
            html.Div(
                [
                    html.Label(id="districts-shade-label", htmlFor="districts-shade"),
                    dcc.RadioItems(
                        id="districts-shade",
                        value="residual",
                        inline=True,
                        options=[
                            {"label": "t", "value": "residual"},
                            {"label": "#", "value": "bins"},
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


# Districts without a figure.
NO_VALUE_FILL = "#eceff1"
SHADE_SCALE = "PuBu"  # blues: apart from the bins' yellow-to-red fill scale
SHADE_TOP = 0.8  # the darkest district stays light enough for the sites on it


def _shade(value: float | None, top: float) -> str:
    """The fill colour of a district's figure on a 0..top scale."""
    if value is None:
        return NO_VALUE_FILL
    share = min(1.0, value / top) if top > 0 else 0.0
    return str(sample_colorscale(SHADE_SCALE, [share * SHADE_TOP])[0])


def _frame(boundaries: DistrictBoundariesAnswer, sites: list[Site]) -> Frame:
    """The districts' outlines when there are any, else the city's own sites: the landfill gate
    usually lies outside the city and would shrink every other site to one clump."""
    if boundaries.bbox is not None:
        min_lon, min_lat, max_lon, max_lat = boundaries.bbox
        return Frame.around([min_lon, max_lon], [min_lat, max_lat])
    located = [s for s in sites if s.lat is not None and s.lon is not None]
    framed = [s for s in located if s.site_type != "landfill"] or located
    if not framed:
        return Frame.around([107.61], [-6.92])
    return Frame.around(
        [s.lon for s in framed if s.lon is not None], [s.lat for s in framed if s.lat is not None]
    )


SITE_OUTLINE = {"color": "#263238", "width": 1}


def _hover(s: Site, figure: str) -> str:
    """A site's hover text: its name, its district and the figure shown."""
    return f"{s.name}<br>{s.district_name or s.district_id}<br>{figure}"


def _sites_trace(
    group: list[Site], name: str, meta: str, marker: dict[str, Any], texts: list[str]
) -> go.Scatter:
    """One legend entry of sites drawn as markers at their longitude/latitude."""
    return go.Scatter(
        x=[s.lon for s in group],
        y=[s.lat for s in group],
        mode="markers",
        name=name,
        meta=meta,
        text=texts,
        hovertemplate="%{text}<extra></extra>",
        marker=marker,
        showlegend=True,
    )


def _tonnage_trace(
    sites: list[Site], tonnes_by_site: dict[str, float], small: int, lang: Lang
) -> go.Scatter:
    """Every site as one kind of dot, coloured by its tonnage."""
    values = [tonnes_by_site.get(s.site_id, 0.0) for s in sites]
    return _sites_trace(
        sites,
        t("map_sites_tonnage", lang),
        "sites:tonnage",
        {
            "size": 10 + small,
            "symbol": "circle",
            "color": values,
            "colorscale": "Viridis",
            "cmin": 0,
            "cmax": _robust_max(values) or max([*values, 0.0]) or 1.0,
            "line": SITE_OUTLINE,
            "showscale": True,
            "colorbar": {"title": {"text": "t"}, "thickness": 10, "len": 0.6, "x": 1.0},
        },
        [_hover(s, fmt.tonnes(v, lang)) for s, v in zip(sites, values, strict=True)],
    )


def _fill_traces(
    sites: list[Site],
    fill_by_site: dict[str, float],
    sensor_sites: set[str],
    small: int,
    lang: Lang,
) -> list[go.Scatter]:
    """Sites without a fill sensor (small open diamonds), sensors without a reading (open
    circles) and bins with a reading, coloured by fill."""
    read = [s for s in sites if s.site_id in fill_by_site]
    silent = [s for s in sites if s.site_id in sensor_sites and s.site_id not in fill_by_site]
    blind = [s for s in sites if s.site_id not in sensor_sites]
    return [
        _sites_trace(
            blind,
            t("map_no_sensor", lang),
            "sites:no-sensor",
            {
                "size": 8 + small,
                "symbol": "diamond-open",
                "color": "#455a64",
                "line": {"width": 1.5},
            },
            [_hover(s, t("map_no_sensor", lang)) for s in blind],
        ),
        _sites_trace(
            silent,
            t("map_sensor_no_reading", lang),
            "sites:sensor-silent",
            {"size": 11 + small, "symbol": "circle-open", "color": "#b71c1c", "line": {"width": 2}},
            [_hover(s, t("map_sensor_no_reading", lang)) for s in silent],
        ),
        _sites_trace(
            read,
            t("map_bin_fill", lang),
            "sites:fill",
            {
                "size": 12 + small,
                "symbol": "circle",
                "color": [fill_by_site[s.site_id] for s in read],
                "colorscale": "YlOrRd",
                "cmin": 0,
                "cmax": 100,
                "line": SITE_OUTLINE,
                "showscale": True,
                "colorbar": {"title": {"text": "%"}, "thickness": 10, "len": 0.6, "x": 1.0},
            },
            [_hover(s, fmt.percent(fill_by_site[s.site_id] / 100, lang)) for s in read],
        ),
    ]


def _site_traces(
    sites: list[Site],
    colour_by: str,
    tonnes_by_site: dict[str, float],
    fill_by_site: dict[str, float],
    sensor_sites: set[str],
    lang: Lang,
) -> list[go.Scatter]:
    """Sites on top of the outlines: by tonnage one kind of dot; by bin fill, bins with a reading
    coloured by fill, sensors without a reading as open circles, and sites without a fill sensor
    as small open diamonds (so an empty bin and a site that cannot tell are never alike)."""
    # A city of hundreds of sites gets smaller markers, so that districts stay visible.
    small = -3 if len(sites) > 100 else 0
    if colour_by == "tonnage":
        return [_tonnage_trace(sites, tonnes_by_site, small, lang)]
    return _fill_traces(sites, fill_by_site, sensor_sites, small, lang)


def _district_shapes(
    boundaries: DistrictBoundariesAnswer,
    shade: dict[str, float],
    shade_by: str,
    top: float,
    unit: str,
    lang: Lang,
) -> list[go.Scatter]:
    """Each district's outline filled by its shade, its figure in the hover text."""
    shapes = []
    for district in boundaries.districts:
        value = shade.get(district.district_id)
        figure = (
            t("map_no_value", lang)
            if value is None
            else f"{fmt.number(value, lang, 1 if shade_by == 'residual' else 0)} {unit}"
        )
        text = f"<b>{district.name}</b><br>{figure}"
        shapes.append(district_shape(district, _shade(value, top), text))
    return shapes


def _district_scale(shade_by: str, top: float, unit: str) -> go.Scatter:
    """The colour scale of the districts' figure, drawn by an invisible marker below the map."""
    return go.Scatter(
        x=[None],
        y=[None],
        mode="markers",
        meta="district-scale",
        hoverinfo="skip",
        showlegend=False,
        marker={
            "color": [0],
            "colorscale": [
                [i / 4, sample_colorscale(SHADE_SCALE, [i / 4 * SHADE_TOP])[0]] for i in range(5)
            ],
            "cmin": 0,
            "cmax": top,
            "showscale": True,
            "colorbar": {
                "title": {"text": unit, "side": "top"},
                "tickformat": ",.1f" if shade_by == "residual" else ",d",
                # Bins are counted: whole-number ticks.
                "dtick": None if shade_by == "residual" else max(1, round(top / 5)),
                "orientation": "h",
                "thickness": 10,
                "len": 0.5,
                "x": 0.0,
                "xanchor": "left",
                "y": -0.02,
                "yanchor": "top",
            },
        },
    )


def _site_map(
    sites: list[Site],
    boundaries: DistrictBoundariesAnswer,
    shade: dict[str, float],
    shade_by: str,
    colour_by: str,
    tonnes_by_site: dict[str, float],
    fill_by_site: dict[str, float],
    sensor_sites: set[str],
    lang: Lang,
) -> go.Figure:
    """Districts as a choropleth (when the city has outlines) with sites on top, drawn as plain
    SVG on longitude/latitude axes: no tiles, no fonts, no WebGL, nothing fetched from anywhere."""
    frame = _frame(boundaries, sites)
    located = [s for s in sites if s.lat is not None and s.lon is not None]
    inside = [s for s in located if frame.holds(s.lon or 0.0, s.lat or 0.0)]
    outside = [s for s in located if s not in inside]
    unit = t("map_t_per_day", lang) if shade_by == "residual" else t("map_bins_unit", lang)
    top = max(shade.values(), default=0.0) or 1.0
    fig = go.Figure()
    for shape in _district_shapes(boundaries, shade, shade_by, top, unit, lang):
        fig.add_trace(shape)
    if boundaries.districts:
        fig.add_trace(_district_scale(shade_by, top, unit))
    for trace in _site_traces(inside, colour_by, tonnes_by_site, fill_by_site, sensor_sites, lang):
        fig.add_trace(trace)
    off = [Place(s.site_id, s.name, s.lon or 0.0, s.lat or 0.0) for s in outside]
    point_off_frame(fig, off, frame, lang)
    map_layout(fig, frame, lang)
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
    """Today in the chosen city's time zone."""
    return get_client().today()


class _Fetched(NamedTuple):
    """What the page reads from the API for the month so far."""

    meta: MetaAnswer
    sites: list[Site]
    per_site: TonnageAnswer
    per_district: TonnageAnswer
    bins: list[Bin]
    boundaries: DistrictBoundariesAnswer


class _Figures(NamedTuple):
    """The month's figures per district and per site, as the map, bars and table draw them."""

    names: dict[str, str]
    by_district: dict[str, dict[str, float]]
    site_counts: dict[str, int]
    full_bins: dict[str, int]
    fill_by_site: dict[str, float]
    sensor_sites: set[str]
    tonnes_by_site: dict[str, float]


def _control_labels(lang: Lang) -> tuple[str, list[dict[str, str]], str, list[dict[str, str]]]:
    """The colour-by and shade-by switches' labels and options in the page's language."""
    options = [
        {"label": t("by_tonnage", lang), "value": "tonnage"},
        {"label": t("by_fill", lang), "value": "fill"},
    ]
    shade_options = [
        {"label": t("map_shade_residual", lang), "value": "residual"},
        {"label": t("map_shade_bins", lang), "value": "bins"},
    ]
    return (t("colour_by", lang), options, t("map_shade_by", lang), shade_options)


def _fetch(client: ApiClient, start: date, end: date) -> _Fetched:
    """Meta, sites, tonnage per site and per district and category, bins and outlines
    (raises ApiUnavailable or ApiRefused)."""
    meta = client.meta()
    sites = client.sites()
    per_site: TonnageAnswer = client.tonnage(start=start, end=end, bucket="total", group_by="site")
    per_district: TonnageAnswer = client.tonnage(
        start=start, end=end, bucket="total", group_by="district,category"
    )
    bins: list[Bin] = client.bins()
    boundaries = client.district_boundaries()
    return _Fetched(meta, sites, per_site, per_district, bins, boundaries)


def _figures(data: _Fetched) -> _Figures:
    """Tonnes per district and category, sites per district, full bins per district, the
    highest fill per site, the sites with a fill sensor and tonnes per site."""
    names = {d.district_id: d.name for d in data.meta.districts}
    by_district: dict[str, dict[str, float]] = defaultdict(dict)
    for row in data.per_district.rows:
        by_district[_row_key(row, "district")][str(row.category)] = row.tonnes
    site_counts: dict[str, int] = defaultdict(int)
    for site in data.sites:
        site_counts[site.district_id] += 1
        names.setdefault(site.district_id, site.district_name or site.district_id)
    full_bins: dict[str, int] = defaultdict(int)
    fill_by_site: dict[str, float] = {}
    sensor_sites: set[str] = set()
    for b in data.bins:
        sensor_sites.add(b.site_id)
        if b.needs_collection and b.district_id:
            full_bins[b.district_id] += 1
        if b.fill_pct is not None:
            fill_by_site[b.site_id] = max(fill_by_site.get(b.site_id, 0.0), b.fill_pct)
    tonnes_by_site = {_row_key(r, "site"): r.tonnes for r in data.per_site.rows}
    return _Figures(
        names, by_district, site_counts, full_bins, fill_by_site, sensor_sites, tonnes_by_site
    )


def _district_shading(figures: _Figures, shade_by: str, start: date, end: date) -> dict[str, float]:
    """Each district's shade: residual tonnes per day, the month's residual so far over the days
    begun (today counts as one), or the number of bins to empty."""
    days = max(1, (min(end, _today() + timedelta(days=1)) - start).days)
    if shade_by == "residual":
        return {
            d: figures.by_district.get(d, {}).get("residual", 0.0) / days for d in figures.names
        }
    return {d: float(figures.full_bins.get(d, 0)) for d in figures.names}


def _outline_note(boundaries: DistrictBoundariesAnswer, lang: Lang) -> html.P:
    """Where the district outlines come from, or that the city has none."""
    if boundaries.districts and boundaries.source:
        return html.P(t("map_outline_source", lang, source=boundaries.source), className="map-note")
    return html.P(t("map_no_outlines", lang), className="map-note map-note-missing")


def _map_panel(
    data: _Fetched,
    figures: _Figures,
    shade: dict[str, float],
    shade_by: str,
    colour_by: str,
    lang: Lang,
) -> html.Div:
    """The map panel: title, the map and the outlines' note."""
    return html.Div(
        [
            html.H2(t("map_title", lang)),
            dcc.Graph(
                id="districts-map",
                className="district-map",
                figure=_site_map(
                    data.sites,
                    data.boundaries,
                    shade,
                    shade_by,
                    colour_by,
                    figures.tonnes_by_site,
                    figures.fill_by_site,
                    figures.sensor_sites,
                    lang,
                ),
                config={"displayModeBar": False, "responsive": True},
            ),
            _outline_note(data.boundaries, lang),
        ],
        className="panel",
    )


def _districts_panel(data: _Fetched, figures: _Figures, lang: Lang) -> html.Div:
    """The districts panel: stacked bars by fate and the table."""
    return html.Div(
        [
            html.H2(t("district_table", lang)),
            dcc.Graph(
                id="districts-bars",
                figure=_district_bars(figures.names, figures.by_district, data.meta, lang),
                config={"displayModeBar": False},
            ),
            _district_table(
                figures.names,
                figures.by_district,
                figures.site_counts,
                figures.full_bins,
                data.meta,
                lang,
            ),
        ],
        className="panel",
    )


@callback(
    Output("districts-body", "children"),
    Output("districts-colour-label", "children"),
    Output("districts-colour", "options"),
    Output("districts-shade-label", "children"),
    Output("districts-shade", "options"),
    Input("lang", "data"),
    Input("tick", "n_intervals"),
    Input("districts-colour", "value"),
    Input("districts-shade", "value"),
)
def render_districts(
    stored_lang: str | None, _tick: int, colour_by: str, shade_by: str | None
) -> tuple[Any, str, list[dict[str, str]], str, list[dict[str, str]]]:
    """Fetch sites, tonnage per site and district, bins and outlines; draw map, bars and table."""
    lang = as_lang(stored_lang)
    shade_by = shade_by if shade_by in ("residual", "bins") else "residual"
    labels = _control_labels(lang)
    client = get_client()
    start, end = month_range(_today())
    try:
        data = _fetch(client, start, end)
    except (ApiUnavailable, ApiRefused) as exc:
        return (api_problem(exc, lang), *labels)
    figures = _figures(data)
    body: list[Any] = []
    if not data.sites:
        body.append(no_data(lang))
    shade = _district_shading(figures, shade_by, start, end)
    body += [
        _map_panel(data, figures, shade, shade_by, colour_by, lang),
        _districts_panel(data, figures, lang),
    ]
    return (html.Div(body), *labels)
