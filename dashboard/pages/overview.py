"""Overview: today so far against the pace expected by now, yesterday, month to date, the trend."""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from dashboard import alerts_panel, charts
from dashboard import format as fmt
from dashboard.client import ApiClient, ApiRefused, ApiUnavailable, get_client
from dashboard.format import label
from dashboard.i18n import Lang, as_lang, request_lang, t
from dashboard.states import api_problem, no_data
from pisman.contract import (
    DayFigures,
    FateFigure,
    MetaAnswer,
    PaceFigure,
    ProgressAnswer,
    SeparateFigure,
    TonnageAnswer,
)
from pisman.settings import get_settings

# The first view's trend is a still picture until Plotly has drawn (trend_picture), so the
# page's index does not preload Plotly (dashboard/app.py): it starts once the figures are up.
dash.register_page(__name__, path="/", name="Overview", order=0, preload_plotly=False)

FATES = ("reduce", "utilize", "residual")
CATEGORIES = (*FATES, "separate")
CATEGORY_COLOURS = {
    "reduce": "#2e7d32",
    "utilize": "#f9a825",
    "residual": "#6d4c41",
    "separate": "#1565c0",
}
OVER_COLOUR = "#c62828"
TREND_DAYS = 90
# The longest trend the picker may ask for: a daily bar chart of more is unreadable (and the
# API's progress trend stops at 400 days too).
MAX_TREND_DAYS = 400
# How long the layout waits for the first view's figures before it leaves them to the callbacks,
# and how much longer for the alerts once the figures are drawn.
FIRST_VIEW_WAIT_S = 3.0
ALERTS_GRACE_S = 0.05
# The trend is redrawn every this many refresh ticks (each tick redraws the cards).
TREND_REFRESH_TICKS = 6
# Fetch the trend's tonnage and the alerts while today's figures are fetched (leaf tasks only),
# and draw the first views (which wait on _FETCH: two pools, so neither waits on itself).
_FETCH = ThreadPoolExecutor(max_workers=8, thread_name_prefix="overview-fetch")
_FIRST = ThreadPoolExecutor(max_workers=8, thread_name_prefix="overview-first-view")
_T = TypeVar("_T")


def _in_pool(pool: ThreadPoolExecutor, fn: Callable[..., _T], *args: Any) -> Future[_T]:
    """Run fn in the pool within the request's context (its API calls count in the request's
    Server-Timing, dashboard/app.py)."""
    return pool.submit(contextvars.copy_context().run, fn, *args)


class _FirstView(NamedTuple):
    today: date
    drawn: _Drawn
    alerts: list[Any] | None  # None: not answered by the time the figures were drawn


def _first_view(client: ApiClient, lang: Lang) -> _FirstView:
    """Everything the page shows, as the API answers now: the alerts and the trend's tonnage
    fetched beside today's figures. The alerts come along if they are there within
    ALERTS_GRACE_S of the figures; else their callback draws them a moment later."""
    today = client.today()
    alerts = _in_pool(_FETCH, alerts_panel.overview_now, client, lang)
    start = (today - timedelta(days=TREND_DAYS - 1)).isoformat()
    drawn = _draw(client, lang, start, today.isoformat(), with_trend=True, picture=True)
    try:
        panel: list[Any] | None = alerts.result(timeout=ALERTS_GRACE_S)
    except FutureTimeout:
        panel = None
    return _FirstView(today, drawn, panel)


def layout(**_query: Any) -> html.Div:
    """The page with its figures drawn in (the first view comes with the layout, in the
    language of the user's cookie: dashboard/first_view.py); the refresh callback redraws them.
    An API slower than FIRST_VIEW_WAIT_S gets the page without its figures at once, and the
    callbacks draw them when they come (a one-shot interval starts them). The trend's date
    range is picked here, outside what the callback redraws, so a refresh never closes an open
    calendar."""
    lang = request_lang()
    pending = _in_pool(_FIRST, _first_view, get_client(), lang)
    try:
        first: _FirstView | None = pending.result(timeout=FIRST_VIEW_WAIT_S)
    except FutureTimeout:
        first = None
    today = first.today if first else datetime.now(get_settings().tz).date()
    drawn = first.drawn if first else _Drawn(None, None, None, None, None)
    start = (today - timedelta(days=TREND_DAYS - 1)).isoformat()
    return html.Div(
        [
            dcc.Interval(id="ov-first-view", interval=50, max_intervals=1, disabled=bool(first)),
            dcc.Interval(
                id="ov-alerts-late",
                interval=50,
                max_intervals=1,
                disabled=bool(first and first.alerts is not None),
            ),
            alerts_panel.panel("overview", first.alerts if first else None),
            html.Div(
                drawn.body,
                id="overview-body",
                className="" if first else "loading-placeholder",
            ),
            html.Div(
                [
                    html.H2(drawn.trend_title, id="ov-trend-title"),
                    html.Div(
                        [
                            html.Label(
                                t("ov_trend_range", lang),
                                id="ov-trend-range-label",
                                htmlFor="ov-trend-start",
                            ),
                            dcc.DatePickerRange(
                                id="ov-trend-range",
                                start_date_id="ov-trend-start",
                                end_date_id="ov-trend-end",
                                updatemode="bothdates",
                                start_date=start,
                                end_date=today.isoformat(),
                                max_date_allowed=today.isoformat(),
                                minimum_nights=0,
                                first_day_of_week=1,
                                number_of_months_shown=1,
                                display_format=fmt.DATE_PICKER_FORMAT[lang],
                                start_date_placeholder_text=t("ov_range_start", lang),
                                end_date_placeholder_text=t("ov_range_end", lang),
                                className="ov-range",
                            ),
                        ],
                        className="controls ov-trend-controls",
                    ),
                    html.Div(drawn.trend_message, id="ov-trend-message"),
                    html.Div(drawn.trend_graph, id="ov-trend-body"),
                    # What the drawn trend shows ([language, first, last]; null: nothing drawn),
                    # so a refresh redraws it whenever it is not what the page now asks for.
                    dcc.Store(id="ov-trend-drawn", data=drawn.trend_drawn),
                ],
                className="panel ov-trend-panel",
            ),
        ],
        className="page page-overview",
    )


# --- today: the categories against targets and the pace expected by now ---------------------


def _bullet(
    value: float,
    target: float | None,
    colour: str,
    *,
    title: str,
    expected: float | None = None,
) -> html.Div:
    """A bullet chart in plain HTML: the value as a bar, the day's target as a red line and what
    is expected by now as a dark tick (no chart library, so the cards appear with the numbers
    rather than after Plotly has loaded)."""
    top = max(target or 0.0, value, expected or 0.0, 1e-9) * 1.15
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
    if expected is not None:
        marks.append(
            html.Div(className="bullet-expected", style={"left": f"{expected / top * 100:.2f}%"})
        )
    return html.Div(marks, className="bullet", title=title)


def _pace_line(code: str, pace: PaceFigure, lang: Lang) -> html.Div:
    """'0,4 t dari 12,0 t yang diharapkan sampai saat ini', ahead/behind in words; for the
    residual a ceiling: over it says so in words (and turns red), never colour alone."""
    so_far = fmt.tonnes(pace.so_far_t, lang)
    if pace.expected_t is None:
        return html.Div(
            t("ov_pace_none", lang, so_far=so_far), id=f"ov-pace-{code}", className="ov-pace"
        )
    expected = fmt.tonnes(pace.expected_t, lang)
    if pace.ceiling:
        parts: list[Any] = [t("ov_pace_ceiling", lang, so_far=so_far, expected=expected)]
        if pace.over_ceiling and pace.day_target_t is not None:
            # Exceeded: the whole day's ceiling is behind us, whatever the hour.
            over = fmt.tonnes(pace.so_far_t - pace.day_target_t, lang)
            parts.append(
                html.Strong(
                    t("ov_over_ceiling_now", lang, over=over),
                    id=f"ov-pace-{code}-over",
                    className="ov-over-text",
                )
            )
        elif pace.above_pace:
            # Not exceeded yet, but more than the hour's share of it: a warning, not red.
            ahead = fmt.tonnes(pace.so_far_t - pace.expected_t, lang)
            parts.append(
                html.Strong(
                    t("ov_above_ceiling_pace", lang, over=ahead),
                    id=f"ov-pace-{code}-ahead",
                    className="ov-ahead-text",
                )
            )
        else:
            parts.append(
                html.Span(t("ov_within_ceiling", lang), className="ov-within-text"),
            )
        return html.Div(parts, id=f"ov-pace-{code}", className="ov-pace")
    status = "ov_ahead" if pace.so_far_t >= pace.expected_t else "ov_behind"
    return html.Div(
        [
            t("ov_pace_expected", lang, so_far=so_far, expected=expected),
            html.Span(t(status, lang), className=f"ov-pace-status {status}"),
        ],
        id=f"ov-pace-{code}",
        className="ov-pace",
    )


def _category_card(code: str, progress: ProgressAnswer, meta: MetaAnswer, lang: Lang) -> html.Div:
    figure: FateFigure | SeparateFigure = getattr(progress.day.categories, code)
    over = False
    if isinstance(figure, SeparateFigure):
        main = fmt.percent(figure.share_of_collected, lang)
        target = fmt.percent(figure.target_share, lang) if figure.target_share is not None else "–"
        extra: list[Any] = [
            html.Div(
                fmt.tonnes(figure.tonnes, lang), id="ov-day-separate-tonnes", className="card-sub"
            )
        ]
        chart = _bullet(
            figure.share_of_collected or 0.0,
            figure.target_share,
            CATEGORY_COLOURS[code],
            title=f"{main} / {t('target', lang)} {target}",
        )
        target_word = t("target", lang)
    else:
        pace: PaceFigure = getattr(progress.pace, code)
        over = bool(pace.over_ceiling)
        main = fmt.tonnes(figure.tonnes, lang)
        target = fmt.tonnes(figure.target_t, lang) if figure.target_t is not None else "–"
        share = (
            fmt.percent(figure.share_of_generation, lang)
            if figure.share_of_generation is not None
            else ""
        )
        extra = [
            _pace_line(code, pace, lang),
            html.Div(share, id=f"ov-day-{code}-share", className="card-sub"),
        ]
        chart = _bullet(
            figure.tonnes,
            figure.target_t,
            OVER_COLOUR if over else CATEGORY_COLOURS[code],
            title=f"{main} / {t('target', lang)} {target}",
            expected=pace.expected_t,
        )
        target_word = t("ov_ceiling_day", lang) if pace.ceiling else t("target", lang)
    return html.Div(
        [
            html.H3(label(meta.categories, code, lang), className="card-title"),
            html.Div(main, id=f"ov-day-{code}", className="card-value"),
            html.Div(
                [f"{target_word}: ", html.Span(target, id=f"ov-day-{code}-target")],
                className="card-sub",
            ),
            *extra,
            chart,
        ],
        className=f"card card-{code}" + (" card-over" if over else ""),
        id=f"card-{code}",
        role="alert" if over else "group",
    )


def _basis_note(progress: ProgressAnswer, lang: Lang) -> html.Div:
    """Where 'expected by now' comes from: the city's own weeks, its declared profile, or none."""
    pace = progress.pace
    bases = {getattr(pace, m).basis for m in ("collected", *FATES)}
    if "city_profile" in bases:
        text = t("ov_basis_profile", lang, source=pace.profile_source or "–")
    elif bases == {"none"}:
        text = t("ov_basis_none", lang)
    else:
        days = ", ".join(fmt.day(d, lang) for d in pace.history_days)
        text = t("ov_basis_history", lang, days=days)
    return html.Div(
        [
            text,
            " ",
            t("ov_ceiling_note", lang),
            " ",
            t("as_of", lang),
            " ",
            html.Span(fmt.timestamp(pace.at, lang), id="ov-pace-at"),
        ],
        id="ov-pace-basis",
        className="note ov-note",
    )


def _collected_card(progress: ProgressAnswer, lang: Lang) -> html.Div:
    """Today's tonnes collected so far, against its pace and the city's daily generation."""
    day = progress.day
    collected = progress.pace.collected
    return html.Div(
        [
            html.Div(
                f"{t('ov_today_so_far', lang)} · {fmt.day(progress.date, lang)}",
                className="card-title",
            ),
            html.Div(
                fmt.tonnes(day.collected_t, lang), id="ov-day-collected", className="card-value"
            ),
            _pace_line("collected", collected, lang),
            html.Div(
                t(
                    "of_generation",
                    lang,
                    generation=fmt.tonnes(progress.generation_t_per_day, lang, 0),
                ),
                id="ov-generation",
                className="card-sub",
            ),
            _bullet(
                day.collected_t,
                collected.day_target_t,
                "#2e7d32",
                title=fmt.tonnes(day.collected_t, lang),
                expected=collected.expected_t,
            ),
        ],
        className="card card-headline",
    )


def _diverted_card(progress: ProgressAnswer, lang: Lang) -> html.Div:
    """Today's share of waste kept from the landfill, and its tonnes."""
    day = progress.day
    return html.Div(
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
    )


def _quota_card(progress: ProgressAnswer, lang: Lang) -> html.Div | None:
    """The landfill quota used in its period (None when the city has no quota)."""
    quota = progress.landfill_quota
    if quota is None or quota.quota_t is None:
        return None
    return html.Div(
        [
            html.Div(
                f"{t('landfill_quota', lang)} ({quota.period_days} {t('days_short', lang)})",
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


def _kbs_card(progress: ProgressAnswer, lang: Lang) -> html.Div:
    """The waste-free neighbourhoods (RW Kawasan Bebas Sampah), against their target if set."""
    kbs = progress.kbs
    target = f" / {fmt.count(kbs.target, lang)}" if kbs.target is not None else ""
    return html.Div(
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


def _organic_alert_card(progress: ProgressAnswer, lang: Lang) -> html.Div | None:
    """An alert card for organic waste taken to the landfill (None when there is none)."""
    if not progress.organic_at_landfill_t:
        return None
    return html.Div(
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


def _headline(progress: ProgressAnswer, lang: Lang) -> html.Div:
    """Today's cards: collected, diverted share, landfill quota (if any), KBS and, when organic
    waste reached the landfill, an alert."""
    cards = [
        _collected_card(progress, lang),
        _diverted_card(progress, lang),
        _quota_card(progress, lang),
        _kbs_card(progress, lang),
        _organic_alert_card(progress, lang),
    ]
    return html.Div([c for c in cards if c is not None], className="cards")


# --- yesterday and the month ------------------------------------------------------------------


def _yesterday(yday: DayFigures, meta: MetaAnswer, lang: Lang) -> html.Div:
    """Yesterday's whole day against its targets; the residual against its ceiling, in words."""
    title = html.H2(f"{t('ov_yesterday', lang)} · {fmt.day(yday.date, lang)}")
    if not yday.has_data:
        return html.Div(
            [
                title,
                html.Div(
                    t("ov_yesterday_no_data", lang),
                    id="ov-yday-nodata",
                    className="state state-empty",
                    role="status",
                ),
            ],
            className="panel ov-yesterday",
            id="ov-yesterday",
        )
    rows = [
        html.Tr(
            [
                html.Td(t("collected", lang)),
                html.Td(
                    fmt.tonnes(yday.collected_t, lang), id="ov-yday-collected", className="num"
                ),
                html.Td("", className="num"),
                html.Td(""),
            ]
        )
    ]
    for code in CATEGORIES:
        figure: FateFigure | SeparateFigure = getattr(yday.categories, code)
        status: Any = ""
        row_class = None
        if isinstance(figure, SeparateFigure):
            value = fmt.percent(figure.share_of_collected, lang)
            target = (
                fmt.percent(figure.target_share, lang) if figure.target_share is not None else "–"
            )
        else:
            value = fmt.tonnes(figure.tonnes, lang)
            target = fmt.tonnes(figure.target_t, lang) if figure.target_t is not None else "–"
        if code == "residual":
            ceiling = yday.residual_ceiling_t
            target = fmt.tonnes(ceiling, lang) if ceiling is not None else "–"
            if yday.residual_over_ceiling and ceiling is not None:
                over = fmt.tonnes(yday.categories.residual.tonnes - ceiling, lang)
                status = html.Strong(
                    t("ov_over_ceiling", lang, over=over),
                    id="ov-yday-residual-over",
                    className="ov-over-text",
                )
                row_class = "ov-row-over"
            elif ceiling is not None:
                status = html.Span(
                    t("ov_within_ceiling", lang),
                    id="ov-yday-residual-within",
                    className="ov-within-text",
                )
        rows.append(
            html.Tr(
                [
                    html.Td(label(meta.categories, code, lang)),
                    html.Td(value, id=f"ov-yday-{code}", className="num"),
                    html.Td(target, id=f"ov-yday-{code}-target", className="num"),
                    html.Td(status),
                ],
                className=row_class,
            )
        )
    head = html.Tr(
        [
            html.Th(t("category", lang)),
            html.Th(t("ov_amount", lang), className="num"),
            html.Th(t("ov_target_or_ceiling", lang), className="num"),
            html.Th(""),
        ]
    )
    return html.Div(
        [
            title,
            html.Div(
                html.Table(
                    [html.Thead(head), html.Tbody(rows)],
                    id="ov-yday-table",
                    className="data-table",
                ),
                className="table-scroll",
            ),
        ],
        className="panel ov-yesterday" + (" ov-panel-over" if yday.residual_over_ceiling else ""),
        id="ov-yesterday",
    )


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
            html.H2(f"{t('month_to_date', lang)} ({mtd.days} {t('days_short', lang)})"),
            html.Div(
                html.Table(
                    [html.Thead(head), html.Tbody(rows), html.Tfoot(foot)],
                    id="ov-mtd-table",
                    className="data-table",
                ),
                className="table-scroll",
            ),
        ],
        className="panel",
    )


# --- the trend over a picked range ------------------------------------------------------------


class TrendRange(NamedTuple):
    """A checked [start, end] range of local days (both included). A NamedTuple, not a
    dataclass: Dash loads page modules outside sys.modules, where dataclasses cannot be built."""

    start: date
    end: date

    @property
    def days(self) -> int:
        """Days in the range."""
        return (self.end - self.start).days + 1


def check_range(start: Any, end: Any, today: date) -> TrendRange | str:
    """The picked range, or the i18n key of what is wrong with it (values no picker sends, from
    a hand-made request, read as missing)."""
    if not start or not end or not isinstance(start, str) or not isinstance(end, str):
        return "ov_range_missing"
    try:
        first, last = date.fromisoformat(start[:10]), date.fromisoformat(end[:10])
    except ValueError:
        return "ov_range_missing"
    if last < first:
        return "ov_range_reversed"
    if last > today:
        return "ov_range_future"
    if (last - first).days + 1 > MAX_TREND_DAYS:
        return "ov_range_too_long"
    return TrendRange(first, last)


class TrendSeries(NamedTuple):
    """What the trend shows, one value a day: drawn once by Plotly and once as a still picture."""

    days: list[date]
    fates: list[charts.Series]  # stacked, bottom first
    separate: charts.Series
    generation: charts.Level | None  # the city's daily generation, labelled


def trend_series(
    answer: TonnageAnswer,
    span: TrendRange,
    generation: float | None,
    meta: MetaAnswer,
    lang: Lang,
) -> TrendSeries:
    """The trend's days, its stacked fates, separate and the generation line."""
    days = [span.start + timedelta(days=i) for i in range(span.days)]
    by_day: dict[tuple[str, str], float] = {}
    for row in answer.rows:
        if row.category is not None:
            by_day[(row.bucket_start[:10], row.category)] = row.tonnes

    def series(code: str) -> charts.Series:
        values = [by_day.get((d.isoformat(), code), 0.0) for d in days]
        return charts.Series(label(meta.categories, code, lang), CATEGORY_COLOURS[code], values)

    level = None
    if generation:
        text = t("ov_generation_line", lang, value=fmt.tonnes(generation, lang, 0))
        level = charts.Level(generation, text, OVER_COLOUR)
    return TrendSeries(days, [series(code) for code in FATES], series("separate"), level)


def trend_figure(trend: TrendSeries, lang: Lang) -> go.Figure:
    """Stacked daily fates, separate as a line, the generation target as a labelled line. The
    value labels sit inside the plot, as on trend_picture's still picture that it replaces."""
    dates = [d.isoformat() for d in trend.days]
    fig = go.Figure()
    for fate in trend.fates:
        fig.add_bar(
            x=dates,
            y=list(fate.values),
            name=fate.name,
            marker_color=fate.colour,
            hovertemplate="%{x}: %{y:,.1f} t<extra>%{fullData.name}</extra>",
        )
    fig.add_scatter(
        x=dates,
        y=list(trend.separate.values),
        mode="lines",
        name=trend.separate.name,
        line={"color": trend.separate.colour},
        hovertemplate="%{x}: %{y:,.1f} t<extra>%{fullData.name}</extra>",
    )
    level = trend.generation
    if level is not None:
        fig.add_hline(
            y=level.value,
            line_dash="dot",
            line_color=level.colour,
            annotation_text=level.text,
            annotation_position="top right",
            annotation_font_color=level.colour,
        )
    fig.update_layout(
        barmode="stack",
        height=charts.HEIGHT,
        autosize=True,
        margin={"l": 4, "r": 4, "t": 24, "b": 40},
        separators=fmt.PLOTLY_SEPARATORS[lang],
        legend={"orientation": "h", "y": -0.15, "traceorder": "normal"},
        xaxis={"tickformat": fmt.PLOTLY_DATE_FORMAT[lang]},
        yaxis={
            "tickformat": ",.0f",
            "ticksuffix": " t",
            "ticklabelposition": "inside top",
            "rangemode": "tozero",
        },
        plot_bgcolor="#fff",
        paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def trend_picture(trend: TrendSeries, lang: Lang) -> html.Img:
    """The trend as a still picture drawn here (dashboard/charts.py): on screen with the first
    view, before Plotly has started; the interactive chart is drawn over it."""
    svg = charts.stacked_bars(
        trend.days, trend.fates, lang, line=trend.separate, level=trend.generation
    )
    names = ", ".join(series.name for series in (*trend.fates, trend.separate))
    return html.Img(
        src=charts.data_url(svg),
        alt=t("ov_trend_picture", lang, series=names),
        id="ov-trend-picture",
        className="ov-trend-picture",
    )


def _fetch_trend(client: ApiClient, checked: TrendRange) -> TonnageAnswer:
    return client.tonnage(
        start=checked.start, end=checked.end + timedelta(days=1), bucket="day", group_by="category"
    )


def _trend(
    checked: TrendRange | str,
    tonnage: Future[TonnageAnswer] | None,
    generation: float | None,
    meta: MetaAnswer,
    lang: Lang,
    *,
    picture: bool = False,
) -> tuple[str, Any, Any]:
    """Title, message and chart of the trend for the picked range (a refused range: the message
    says why and no chart is drawn). With `picture` (the first view), the chart comes with its
    still picture underneath, shown until Plotly has drawn."""
    if isinstance(checked, str) or tonnage is None:
        message = html.Div(
            t(str(checked), lang, days=MAX_TREND_DAYS),
            id="ov-trend-error",
            className="state state-warning",
            role="alert",
        )
        return t("ov_trend_title", lang, start="–", end="–"), message, None
    title = t(
        "ov_trend_title", lang, start=fmt.day(checked.start, lang), end=fmt.day(checked.end, lang)
    )
    try:
        answer = tonnage.result()
    except (ApiUnavailable, ApiRefused) as exc:
        return title, api_problem(exc, lang), None
    trend = trend_series(answer, checked, generation, meta, lang)
    graph = dcc.Graph(
        id="ov-trend",
        figure=trend_figure(trend, lang),
        config={"displayModeBar": False, "responsive": True},
        className="ov-trend-graph",
    )
    if picture:
        still = trend_picture(trend, lang)
        return title, None, html.Div([still, graph], className="ov-trend-box")
    return title, None, graph


def _has_data(progress: ProgressAnswer) -> bool:
    return bool(
        progress.day.collected_t
        or progress.month_to_date.collected_t
        or progress.yesterday.has_data
    )


class _Drawn(NamedTuple):
    """The page's figures: the cards and tables, and the trend (title, message, chart and what
    it shows; all no_update when the trend is left as drawn)."""

    body: Any
    trend_title: Any
    trend_message: Any
    trend_graph: Any
    trend_drawn: Any


def _body(progress: ProgressAnswer, meta: MetaAnswer, lang: Lang) -> html.Div:
    body: list[Any] = []
    if not _has_data(progress):
        body.append(no_data(lang))
    body += [
        _headline(progress, lang),
        html.Div(
            [_category_card(code, progress, meta, lang) for code in CATEGORIES],
            className="cards",
        ),
        _basis_note(progress, lang),
        html.Div(
            [_yesterday(progress.yesterday, meta, lang), _month_table(progress, meta, lang)],
            className="panels ov-panels",
        ),
        html.Div(
            [t("as_of", lang), " ", html.Span(fmt.timestamp(progress.as_of, lang), id="ov-as-of")],
            className="as-of",
        ),
    ]
    return html.Div(body, id="overview-figures")


def _draw(
    client: ApiClient,
    lang: Lang,
    start: str | None,
    end: str | None,
    *,
    with_trend: bool,
    picture: bool = False,
) -> _Drawn:
    """Fetch the figures and draw them (the trend too when `with_trend`; with its still picture
    when `picture`: the first view)."""
    checked = check_range(start, end, client.today()) if with_trend else "no trend"
    # The trend's tonnage is asked for beside today's figures, not after them.
    tonnage = (
        _in_pool(_FETCH, _fetch_trend, client, checked) if isinstance(checked, TrendRange) else None
    )
    try:
        meta = client.meta()
        # The trend comes from /v1/tonnage for the picked range: no 90 days here.
        progress = client.progress(trend_days=1)
    except (ApiUnavailable, ApiRefused) as exc:
        no_title = t("ov_trend_title", lang, start="–", end="–")
        return _Drawn(api_problem(exc, lang), no_title, None, None, None)
    if not with_trend:
        return _Drawn(_body(progress, meta, lang), no_update, no_update, no_update, no_update)
    generation = progress.generation_t_per_day
    title, message, graph = _trend(checked, tonnage, generation, meta, lang, picture=picture)
    drawn = [lang, start, end] if graph is not None else None
    return _Drawn(_body(progress, meta, lang), title, message, graph, drawn)


@callback(
    Output("overview-body", "children"),
    Output("ov-trend-title", "children"),
    Output("ov-trend-message", "children"),
    Output("ov-trend-body", "children"),
    Output("ov-trend-drawn", "data"),
    Input("lang", "data"),
    Input("tick", "n_intervals"),
    Input("ov-trend-range", "start_date"),
    Input("ov-trend-range", "end_date"),
    Input("ov-first-view", "n_intervals"),
    State("ov-trend-drawn", "data"),
    # The page's layout carries its first view (dashboard/first_view.py), or starts this
    # callback once through ov-first-view when the API was too slow for it.
    prevent_initial_call=True,
)
def render_overview(
    stored_lang: str | None,
    tick: int,
    start: str | None,
    end: str | None,
    _late: Any,
    drawn: Any,
) -> tuple[Any, Any, Any, Any, Any]:
    """Redraw the page every DASHBOARD_REFRESH_S seconds, and when the language or the trend's
    range changes. The trend changes little between refreshes and redrawing a chart is the
    costliest part of a refresh: every TREND_REFRESH_TICKS-th tick, unless what is drawn is not
    what the page asks for (another language or range, or nothing drawn yet)."""
    lang = as_lang(stored_lang)
    keep_trend = (
        ctx.triggered_id == "tick"
        and bool((tick or 0) % TREND_REFRESH_TICKS)
        and drawn == [lang, start, end]
    )
    return tuple(_draw(get_client(), lang, start, end, with_trend=not keep_trend))


@callback(
    Output("ov-trend-range-label", "children"),
    Output("ov-trend-range", "display_format"),
    Output("ov-trend-range", "start_date_placeholder_text"),
    Output("ov-trend-range", "end_date_placeholder_text"),
    Input("lang", "data"),
    prevent_initial_call=True,  # the layout is drawn in the cookie's language
)
def label_range_picker(stored_lang: str | None) -> tuple[str, str, str, str]:
    """The picker's label, date format and placeholders in the page's language (only when the
    language changes, so a refresh never touches an open calendar)."""
    lang = as_lang(stored_lang)
    return (
        t("ov_trend_range", lang),
        fmt.DATE_PICKER_FORMAT[lang],
        t("ov_range_start", lang),
        t("ov_range_end", lang),
    )
