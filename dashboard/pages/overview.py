"""Overview: today against the generation target per category, month to date, 90-day trend."""

from __future__ import annotations

from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, Output, callback, dcc, html

from dashboard import alerts_panel
from dashboard import format as fmt
from dashboard.client import ApiRefused, ApiUnavailable, get_client
from dashboard.format import label
from dashboard.i18n import Lang, as_lang, t
from dashboard.states import api_problem, no_data
from pisman.contract import FateFigure, MetaAnswer, ProgressAnswer, SeparateFigure, TrendDay

dash.register_page(__name__, path="/", name="Overview", order=0)

FATES = ("reduce", "utilize", "residual")
CATEGORIES = (*FATES, "separate")
CATEGORY_COLOURS = {
    "reduce": "#2e7d32",
    "utilize": "#f9a825",
    "residual": "#6d4c41",
    "separate": "#1565c0",
}
TREND_DAYS = 90


def layout(**_query: Any) -> html.Div:
    """The page; figures arrive through the refresh callback."""
    return html.Div(
        [
            alerts_panel.panel("overview"),
            html.Div(id="overview-body", className="loading-placeholder"),
        ],
        className="page page-overview",
    )


def _bullet(value: float, target: float | None, colour: str, *, title: str) -> html.Div:
    """A bullet chart in plain HTML: the value as a bar, the target as a red line (no chart
    library, so the cards appear with the numbers rather than after Plotly has loaded)."""
    top = max(target or 0.0, value, 1e-9) * 1.15
    marks = [
        html.Div(
            className="bullet-value",
            style={"width": f"{min(value / top * 100, 100):.2f}%", "background": colour},
        )
    ]
    if target is not None:
        marks.append(
            html.Div(className="bullet-target", style={"left": f"{target / top * 100:.2f}%"})
        )
    return html.Div(marks, className="bullet", title=title)


def _category_card(code: str, progress: ProgressAnswer, meta: MetaAnswer, lang: Lang) -> html.Div:
    figure: FateFigure | SeparateFigure = getattr(progress.day.categories, code)
    if isinstance(figure, SeparateFigure):
        main = fmt.percent(figure.share_of_collected, lang)
        target = fmt.percent(figure.target_share, lang) if figure.target_share is not None else "–"
        extra = html.Div(
            fmt.tonnes(figure.tonnes, lang), id="ov-day-separate-tonnes", className="card-sub"
        )
        chart = _bullet(
            figure.share_of_collected or 0.0,
            figure.target_share,
            CATEGORY_COLOURS[code],
            title=f"{main} / {t('target', lang)} {target}",
        )
    else:
        main = fmt.tonnes(figure.tonnes, lang)
        target = fmt.tonnes(figure.target_t, lang) if figure.target_t is not None else "–"
        share = (
            fmt.percent(figure.share_of_generation, lang)
            if figure.share_of_generation is not None
            else ""
        )
        extra = html.Div(share, id=f"ov-day-{code}-share", className="card-sub")
        chart = _bullet(
            figure.tonnes,
            figure.target_t,
            CATEGORY_COLOURS[code],
            title=f"{main} / {t('target', lang)} {target}",
        )
    return html.Div(
        [
            html.H3(label(meta.categories, code, lang), className="card-title"),
            html.Div(main, id=f"ov-day-{code}", className="card-value"),
            html.Div(
                [f"{t('target', lang)}: ", html.Span(target, id=f"ov-day-{code}-target")],
                className="card-sub",
            ),
            extra,
            chart,
        ],
        className=f"card card-{code}",
        id=f"card-{code}",
    )


def _headline(progress: ProgressAnswer, lang: Lang) -> html.Div:
    day = progress.day
    items = [
        html.Div(
            [
                html.Div(t("today", lang) + f" · {progress.date}", className="card-title"),
                html.Div(
                    fmt.tonnes(day.collected_t, lang), id="ov-day-collected", className="card-value"
                ),
                html.Div(
                    t(
                        "of_generation",
                        lang,
                        generation=fmt.tonnes(progress.generation_t_per_day, lang, 0),
                    ),
                    id="ov-generation",
                    className="card-sub",
                ),
            ],
            className="card card-headline",
        ),
        html.Div(
            [
                html.Div(t("diverted_share", lang), className="card-title"),
                html.Div(
                    fmt.percent(day.diverted_share, lang),
                    id="ov-day-diverted-share",
                    className="card-value",
                ),
                html.Div(
                    [
                        t("diverted", lang),
                        ": ",
                        html.Span(fmt.tonnes(day.diverted_t, lang), id="ov-day-diverted"),
                    ],
                    className="card-sub",
                ),
            ],
            className="card card-headline",
        ),
    ]
    quota = progress.landfill_quota
    if quota is not None and quota.quota_t is not None:
        items.append(
            html.Div(
                [
                    html.Div(
                        f"{t('landfill_quota', lang)} ({quota.period_days} {'hari' if lang == 'id' else 'days'})",
                        className="card-title",
                    ),
                    html.Div(
                        fmt.percent(quota.used_share, lang),
                        id="ov-quota-share",
                        className="card-value",
                    ),
                    html.Div(
                        t(
                            "quota_used",
                            lang,
                            used=fmt.tonnes(quota.used_t, lang),
                            quota=fmt.tonnes(quota.quota_t, lang, 0),
                            share=fmt.percent(quota.used_share, lang),
                            remaining=fmt.tonnes(quota.remaining_t, lang),
                        ),
                        id="ov-quota",
                        className="card-sub",
                    ),
                ],
                className="card card-headline",
            )
        )
    kbs = progress.kbs
    target = f" / {fmt.count(kbs.target, lang)}" if kbs.target is not None else ""
    items.append(
        html.Div(
            [
                html.Div(t("kbs", lang), className="card-title"),
                html.Div(
                    fmt.count(kbs.count, lang) + target,
                    id="ov-kbs",
                    className="card-value",
                ),
            ],
            className="card card-headline",
        )
    )
    if progress.organic_at_landfill_t:
        items.append(
            html.Div(
                [
                    html.Div(t("organic_at_landfill", lang), className="card-title"),
                    html.Div(
                        fmt.tonnes(progress.organic_at_landfill_t, lang),
                        id="ov-organic-landfill",
                        className="card-value",
                    ),
                ],
                className="card card-headline card-alert",
                role="alert",
            )
        )
    return html.Div(items, className="cards")


def _month_table(progress: ProgressAnswer, meta: MetaAnswer, lang: Lang) -> html.Div:
    mtd = progress.month_to_date
    rows = []
    for code in CATEGORIES:
        figure: FateFigure | SeparateFigure = getattr(mtd.categories, code)
        if isinstance(figure, SeparateFigure):
            target = (
                fmt.percent(figure.target_share, lang) if figure.target_share is not None else "–"
            )
        else:
            target = fmt.tonnes(figure.target_t, lang) if figure.target_t is not None else "–"
        rows.append(
            html.Tr(
                [
                    html.Td(label(meta.categories, code, lang)),
                    html.Td(fmt.tonnes(figure.tonnes, lang), id=f"ov-mtd-{code}", className="num"),
                    html.Td(target, id=f"ov-mtd-{code}-target", className="num"),
                    html.Td(fmt.tonnes(getattr(mtd.projection, code), lang), className="num"),
                ]
            )
        )
    head = html.Tr(
        [
            html.Th(t("category", lang)),
            html.Th(t("tonnes", lang), className="num"),
            html.Th(t("target", lang), className="num"),
            html.Th(t("projection", lang), className="num"),
        ]
    )
    foot = [
        html.Tr(
            [
                html.Th(t("collected", lang)),
                html.Th(fmt.tonnes(mtd.collected_t, lang), id="ov-mtd-collected", className="num"),
                html.Th(),
                html.Th(),
            ]
        ),
        html.Tr(
            [
                html.Th(t("diverted_share", lang), colSpan=2),
                html.Th(
                    fmt.percent(mtd.diverted_share, lang),
                    id="ov-mtd-diverted-share",
                    className="num",
                ),
                html.Th(),
            ]
        ),
    ]
    return html.Div(
        [
            html.H2(
                f"{t('month_to_date', lang)} ({mtd.days} {'hari' if lang == 'id' else 'days'})"
            ),
            html.Table(
                [html.Thead(head), html.Tbody(rows), html.Tfoot(foot)],
                id="ov-mtd-table",
                className="data-table",
            ),
        ],
        className="panel",
    )


def _trend(progress: ProgressAnswer, meta: MetaAnswer, lang: Lang) -> html.Div:
    dates = [row.date for row in progress.trend]
    fig = go.Figure()
    for code in FATES:
        fig.add_bar(
            x=dates,
            y=[getattr(row, code) for row in progress.trend],
            name=label(meta.categories, code, lang),
            marker_color=CATEGORY_COLOURS[code],
            hovertemplate="%{x}: %{y:,.1f} t<extra>%{fullData.name}</extra>",
        )
    fig.add_scatter(
        x=dates,
        y=[row.separate for row in progress.trend],
        mode="lines",
        name=label(meta.categories, "separate", lang),
        line={"color": CATEGORY_COLOURS["separate"]},
        hovertemplate="%{x}: %{y:,.1f} t<extra>%{fullData.name}</extra>",
    )
    if progress.generation_t_per_day:
        fig.add_hline(y=progress.generation_t_per_day, line_dash="dot", line_color="#c62828")
    fig.update_layout(
        barmode="stack",
        height=340,
        margin={"l": 50, "r": 10, "t": 10, "b": 40},
        separators=fmt.PLOTLY_SEPARATORS[lang],
        legend={"orientation": "h", "y": -0.15, "traceorder": "normal"},
        xaxis={"tickformat": "%d/%m" if lang == "id" else "%b %d"},
        yaxis={"title": {"text": "t"}, "tickformat": ",.0f"},
        plot_bgcolor="#fff",
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return html.Div(
        [
            html.H2(t("trend_title", lang, days=len(dates))),
            dcc.Graph(id="ov-trend", figure=fig, config={"displayModeBar": False}),
        ],
        className="panel",
    )


def _day_has_data(row: TrendDay) -> bool:
    return any(getattr(row, code) for code in CATEGORIES)


def _has_data(progress: ProgressAnswer) -> bool:
    if progress.day.collected_t or progress.month_to_date.collected_t:
        return True
    return any(_day_has_data(row) for row in progress.trend)


@callback(Output("overview-body", "children"), Input("lang", "data"), Input("tick", "n_intervals"))
def render_overview(stored_lang: str | None, _tick: int) -> Any:
    """Fetch the figures and draw the page (every DASHBOARD_REFRESH_S seconds)."""
    lang = as_lang(stored_lang)
    client = get_client()
    try:
        meta = client.meta()
        progress = client.progress(trend_days=TREND_DAYS)
    except (ApiUnavailable, ApiRefused) as exc:
        return api_problem(exc, lang)
    body: list[Any] = []
    if not _has_data(progress):
        body.append(no_data(lang))
    body += [
        _headline(progress, lang),
        html.Div(
            [_category_card(code, progress, meta, lang) for code in CATEGORIES],
            className="cards",
        ),
        html.Div(
            [_month_table(progress, meta, lang), _trend(progress, meta, lang)], className="panels"
        ),
        html.Div(
            [t("as_of", lang), " ", html.Span(fmt.timestamp(progress.as_of, lang), id="ov-as-of")],
            className="as-of",
        ),
    ]
    return html.Div(body, id="overview-figures")
