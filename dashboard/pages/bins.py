"""Bins and devices: bins needing collection (fullest first), silent devices, low batteries; per district."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash
from dash import Input, Output, callback, dcc, html

from dashboard import alerts_panel
from dashboard import format as fmt
from dashboard.client import ApiRefused, ApiUnavailable, get_client
from dashboard.i18n import Lang, as_lang, t
from dashboard.states import api_problem
from dashboard.tables import table
from pisman.contract import Alert, Bin, BinForecastItem, Device, Label

dash.register_page(__name__, path="/bins", name="Bins and devices", order=2)

# Forecasts move with the hourly means: every 5 minutes is plenty (the live tick stays for the
# lists above), and spares the API a whole city's forecasts every 10 s.
FORECAST_REFRESH_S = 300


def layout(**_query: Any) -> html.Div:
    """The page: a district filter; lists arrive through the refresh callback."""
    return html.Div(
        [
            html.Div(
                [
                    html.Label(id="bins-district-label", htmlFor="bins-district"),
                    dcc.Dropdown(
                        id="bins-district",
                        options=[],
                        value=None,
                        clearable=True,
                        className="dropdown",
                    ),
                ],
                className="controls",
            ),
            alerts_panel.panel("bins"),
            html.Div(id="bins-body", className="loading-placeholder"),
            dcc.Interval(id="bins-forecast-tick", interval=FORECAST_REFRESH_S * 1000),
            html.Div(id="bins-forecast", className="loading-placeholder"),
        ],
        className="page page-bins",
    )


def _location(lat: float | None, lon: float | None, lang: Lang) -> str:
    if lat is None or lon is None:
        return "–"
    return f"{fmt.number(lat, lang, 5)}; {fmt.number(lon, lang, 5)}"


def _status(code: str | None, lang: Lang) -> str:
    return t(f"status_{code}", lang) if code else "–"


def _bins_block(full: list[Bin], lang: Lang) -> Any:
    """Bins at or above their threshold, fullest first (or a line saying there are none)."""
    if not full:
        return html.P(t("no_bins_to_empty", lang), id="bins-none", className="state state-ok")
    return table(
        [
            t("site", lang),
            t("district", lang),
            t("fill", lang),
            t("battery", lang),
            t("reading_time", lang),
            t("location", lang),
            t("device", lang),
        ],
        [
            [
                b.site_name or b.site_id,
                b.district_name or b.district_id or "–",
                fmt.percent(b.fill_pct / 100 if b.fill_pct is not None else None, lang, 0),
                fmt.percent(b.battery_pct / 100 if b.battery_pct is not None else None, lang, 0),
                fmt.timestamp(b.reading_ts, lang),
                _location(b.lat, b.lon, lang),
                b.device_id,
            ]
            for b in full
        ],
        table_id="bins-table",
        row_ids=[f"bin-{b.device_id}" for b in full],
        numeric_columns=(2, 3),
    )


def _silent_block(silent: list[Device], lang: Lang, kinds: Sequence[Label[Any]] = ()) -> Any:
    """Devices not online, silent longest first (or a line saying there are none)."""
    if not silent:
        return html.P(t("no_silent_devices", lang), id="silent-none", className="state state-ok")
    return table(
        [
            t("device", lang),
            t("kind", lang),
            t("site", lang),
            t("status", lang),
            t("silent_for", lang),
            t("last_seen", lang),
        ],
        [
            [
                d.device_id,
                fmt.label(kinds, d.kind, lang),  # 'Sensor kontainer', not bin_sensor
                d.site_name or d.site_id,
                _status(d.status, lang),
                fmt.duration(d.silent_for_s, lang),
                fmt.timestamp(d.last_seen_at, lang),
            ]
            for d in silent
        ],
        table_id="silent-table",
        row_ids=[f"silent-{d.device_id}" for d in silent],
        numeric_columns=(4,),
    )


def _battery_block(low: list[Alert], devices: list[Device], lang: Lang) -> Any:
    """Low-battery alerts with each device's battery (or a line saying there are none)."""
    if not low:
        return html.P(t("no_low_batteries", lang), id="battery-none", className="state state-ok")
    battery_by_device = {d.device_id: d.battery_pct for d in devices}

    def battery(device_id: str | None) -> str:
        pct = battery_by_device.get(device_id or "")
        return fmt.percent(pct / 100, lang, 0) if pct is not None else "–"

    return table(
        [t("device", lang), t("battery", lang), t("status", lang)],
        [
            [
                a.device_id or "–",
                battery(a.device_id),
                a.message_id if lang == "id" else a.message_en,
            ]
            for a in low
        ],
        table_id="battery-table",
        row_ids=[f"battery-{a.device_id}" for a in low],
        numeric_columns=(1,),
    )


def _panel(title: str, count: int, block: Any, lang: Lang) -> html.Div:
    return html.Div([html.H2(f"{title} ({fmt.count(count, lang)})"), block], className="panel")


@callback(
    Output("bins-body", "children"),
    Output("bins-district", "options"),
    Output("bins-district-label", "children"),
    Output("bins-district", "placeholder"),
    Input("lang", "data"),
    Input("tick", "n_intervals"),
    Input("bins-district", "value"),
)
def render_bins(
    stored_lang: str | None, _tick: int, district: str | None
) -> tuple[Any, list[dict[str, str]], str, str]:
    """Fetch bins, devices and alerts for the district (or all) and list what needs attention."""
    lang = as_lang(stored_lang)
    client = get_client()
    options: list[dict[str, str]] = []
    try:
        meta = client.meta()
        options = [
            {"label": d.name, "value": d.district_id}
            for d in sorted(meta.districts, key=lambda d: d.name)
        ]
        bins = client.bins(district=district, needs_collection=True)
        devices = client.devices(district=district)
        alerts = client.alerts(district=district)
        no_sites = district is not None and not client.sites(district=district)
    except (ApiUnavailable, ApiRefused) as exc:
        return api_problem(exc, lang), options, t("district", lang), t("all_districts", lang)
    if no_sites:
        notice = html.Div(
            t("no_sites_in_district", lang), id="no-sites", className="state state-empty"
        )
        return notice, options, t("district", lang), t("all_districts", lang)

    full = [b for b in bins if b.needs_collection]
    silent = sorted(
        (d for d in devices if d.status != "online"),
        key=lambda d: -(d.silent_for_s if d.silent_for_s is not None else float("inf")),
    )
    low = [a for a in alerts if a.kind == "low_battery"]
    body = html.Div(
        [
            _panel(t("bins_to_empty", lang), len(full), _bins_block(full, lang), lang),
            _panel(
                t("silent_devices", lang),
                len(silent),
                _silent_block(silent, lang, meta.device_kinds),
                lang,
            ),
            _panel(t("low_batteries", lang), len(low), _battery_block(low, devices, lang), lang),
        ]
    )
    return body, options, t("district", lang), t("all_districts", lang)


def _hours_text(hours: float | None, lang: Lang, per: int) -> str:
    """Hours in the unit `per` (1: hours, 24: days), rounded; past the 14-day horizon: '336+'."""
    if hours is None:
        return f"{fmt.number(14 * 24 / per, lang, 0)}+"
    return fmt.number(hours / per, lang, 0)


def until_threshold(item: BinForecastItem, lang: Lang, lookback_days: int = 28) -> str:
    """'± 6 jam (4–9)' / 'in ~6 h (4–9)' (expected, a fast day–a slow day), or why not."""
    to = item.to_threshold
    if item.status != "ok" or to is None:
        reason = {
            "no_readings": t("forecast_reason_no_readings", lang, days=lookback_days),
            "stale": t("forecast_reason_stale", lang),
            "too_few_hours": t("forecast_reason_too_few_hours", lang, hours=item.history_hours),
        }.get(item.reason or "", item.message)
        return f"{t('forecast_no_history', lang)}: {reason}"
    if to.expected_h is None:
        return t("forecast_beyond", lang)
    if to.expected_h <= 0:
        return t("forecast_at_threshold", lang)
    if to.expected_h < 1:
        return t("forecast_under_hour", lang)
    per, key = (1, "forecast_hours") if to.expected_h < 48 else (24, "forecast_days")
    return t(
        key,
        lang,
        n=_hours_text(to.expected_h, lang, per),
        low=_hours_text(to.earliest_h, lang, per),
        high=_hours_text(to.latest_h, lang, per),
    )


def _forecast_block(items: list[BinForecastItem], lang: Lang, lookback_days: int) -> Any:
    """Every bin, soonest to its threshold first (the API's order), or a line saying none."""
    if not items:
        return html.P(t("no_bins_to_forecast", lang), id="forecast-none", className="state")
    return html.Div(
        [
            table(
                [
                    t("site", lang),
                    t("district", lang),
                    t("forecast_fill_now", lang),
                    t("forecast_until", lang),
                    t("forecast_expected_at", lang),
                    t("forecast_rate", lang),
                    t("device", lang),
                ],
                [
                    [
                        i.site_name or i.site_id,
                        i.district_name or i.district_id,
                        fmt.percent(
                            i.current_fill_pct / 100 if i.current_fill_pct is not None else None,
                            lang,
                            0,
                        ),
                        until_threshold(i, lang, lookback_days),
                        fmt.timestamp(
                            i.to_threshold.expected_at
                            if i.to_threshold and i.to_threshold.expected_h
                            else None,
                            lang,
                        ),
                        fmt.percent(
                            i.rate_pct_per_day / 100 if i.rate_pct_per_day is not None else None,
                            lang,
                            0,
                        ),
                        i.device_id,
                    ]
                    for i in items
                ],
                table_id="forecast-table",
                row_ids=[f"forecast-{i.device_id}" for i in items],
                numeric_columns=(2, 5),
            ),
            html.P(t("forecast_note", lang, days=lookback_days), className="note"),
        ]
    )


@callback(
    Output("bins-forecast", "children"),
    Input("lang", "data"),
    Input("bins-forecast-tick", "n_intervals"),
    Input("bins-district", "value"),
)
def render_forecasts(stored_lang: str | None, _tick: int | None, district: str | None) -> Any:
    """Every bin's forecast for the district (or the city) in one API call, soonest first."""
    lang = as_lang(stored_lang)
    title = t("bins_forecast", lang)
    try:
        chosen = district if isinstance(district, str) and district else None
        answer = get_client().bin_forecasts(district=chosen)
    except (ApiUnavailable, ApiRefused) as exc:
        return html.Div([html.H2(title), api_problem(exc, lang)], className="panel")
    block = _forecast_block(answer.bins, lang, answer.lookback_days)
    return _panel(title, len(answer.bins), block, lang)
