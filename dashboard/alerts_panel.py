"""The alerts panel shown on the overview and the bins page (filled by its own callbacks).

Overview: counts by severity and the first few alerts, with a link to the bins page. Bins page:
every alert, most severe first (a fire first), each with an acknowledge button (pattern-matching
ids) or who acknowledged it and when. Acknowledging goes through the dashboard's own callback
(the session cookie is SameSite=Lax and every callback needs the session, dashboard/auth.py),
which asks the API as the logged-in user (dashboard/client.py), so the API records that user.
"""

from __future__ import annotations

from typing import Any

from dash import ALL, Input, Output, State, callback, ctx, dcc, html, no_update

from dashboard import format as fmt
from dashboard.client import ApiClient, ApiRefused, ApiUnavailable, get_client
from dashboard.i18n import TEXT, Lang, as_lang, t
from dashboard.states import api_problem
from pisman.contract import Alert
from pisman.domain import Severity

OVERVIEW_TOP = 3  # alerts listed on the overview; the rest are counted and one click away
ACK_BUTTON = "alert-ack"
# Marks that go with the words and the colour (never alone: aria-hidden).
ICONS = {
    "fire": "🔥",
    "tilt": "⚠",
    "lid_open": "◳",
    "bin_full": "▮",
    "device_silent": "⌁",
    "low_battery": "▯",
    "organic_at_landfill": "♻",
}
SEVERITIES = (Severity.CRITICAL, Severity.WARNING, Severity.INFO)


def _attrs(values: dict[str, str]) -> dict[str, Any]:
    """aria-* and data-* attributes, which Dash takes as keyword arguments."""
    return dict(values)


def panel(page: str, body: list[Any] | None = None) -> html.Div:
    """The panel's place on a page; `page` names it (ids: alerts-panel-<page>); `body` is its
    first view when the page draws one (else the callback fills it)."""
    css = "alerts-body" if body is not None else "alerts-body loading-placeholder"
    children: list[Any] = [html.Div(body, id=f"alerts-body-{page}", className=css)]
    if page == "bins":
        # What the last acknowledge click came to; writing it redraws the list.
        children.insert(0, dcc.Store(id="alerts-ack-result"))
    return html.Div(
        children,
        id=f"alerts-panel-{page}",
        className="alerts-panel",
        role="region",
        **_attrs({"aria-label": "Peringatan / Alerts"}),
    )


def kind_label(kind: str, lang: Lang) -> str:
    """An alert kind in words (never its code)."""
    key = f"alert_kind_{kind}"
    return t(key if key in TEXT else "alert_kind_unknown", lang)


def _message(alert: Alert, lang: Lang) -> str:
    return alert.message_id if lang == "id" else alert.message_en


def _acked_line(alert: Alert, lang: Lang) -> html.Span:
    who = alert.acknowledged_by_name or alert.acknowledged_by or "–"
    when = fmt.timestamp(alert.acknowledged_at, lang)
    return html.Span(
        "✓ " + t("alerts_acked_by", lang, who=who, when=when),
        className="alert-acked",
    )


def alert_row(alert: Alert, lang: Lang, *, with_button: bool) -> html.Li:
    """One alert: icon, kind in words, severity, message, since when, and its acknowledgement."""
    acked = alert.acknowledged_at is not None
    action: Any = None
    if acked:
        action = _acked_line(alert, lang)
    elif with_button:
        action = html.Button(
            t("alerts_ack", lang),
            id={"type": ACK_BUTTON, "alert": alert.alert_id},
            className="alert-ack-button",
            n_clicks=0,
        )
    classes = f"alert alert-{alert.severity.value} alert-kind-{alert.kind.value}"
    return html.Li(
        [
            html.Span(
                ICONS.get(alert.kind.value, "!"),
                className="alert-icon",
                **_attrs({"aria-hidden": "true"}),
            ),
            html.Div(
                [
                    html.Div(
                        [
                            html.Strong(kind_label(alert.kind.value, lang), className="alert-kind"),
                            html.Span(
                                t(f"severity_{alert.severity.value}", lang),
                                className="alert-severity",
                            ),
                        ],
                        className="alert-head",
                    ),
                    html.Div(_message(alert, lang), className="alert-message"),
                    html.Div(
                        t("alerts_since", lang, when=fmt.timestamp(alert.since, lang)),
                        className="alert-since",
                    ),
                    html.Div(alert.ack_note, className="alert-note") if alert.ack_note else None,
                ],
                className="alert-text",
            ),
            html.Div(action, className="alert-action") if action is not None else None,
        ],
        className=classes + (" alert-is-acked" if acked else ""),
        **_attrs({"data-alert-id": alert.alert_id, "data-kind": alert.kind.value}),
    )


def _counts(alerts: list[Alert], lang: Lang) -> html.Div:
    chips = []
    for severity in SEVERITIES:
        n = sum(1 for a in alerts if a.severity == severity)
        if n:
            chips.append(
                html.Span(
                    f"{fmt.count(n, lang)} {t(f'severity_{severity.value}', lang).lower()}",
                    className=f"alert-count alert-count-{severity.value}",
                    id=f"alerts-count-{severity.value}",
                )
            )
    open_n = sum(1 for a in alerts if a.acknowledged_at is None)
    chips.append(
        html.Span(
            t("alerts_open_count", lang, n=fmt.count(open_n, lang)),
            className="alert-count alert-count-open",
            id="alerts-count-open",
        )
    )
    return html.Div(chips, className="alert-counts")


def _heading(alerts: list[Alert], lang: Lang) -> html.H2:
    return html.H2(f"{t('alerts_title', lang)} ({fmt.count(len(alerts), lang)})")


def overview_body(alerts: list[Alert], lang: Lang) -> list[Any]:
    """Counts by severity, the first few alerts, and a link to all of them."""
    if not alerts:
        return [
            _heading(alerts, lang),
            html.P(t("alerts_none", lang), className="state state-ok", id="alerts-none-overview"),
        ]
    top = alerts[:OVERVIEW_TOP]
    rest = len(alerts) - len(top)
    footer: list[Any] = []
    if rest:
        footer.append(html.Span(t("alerts_more", lang, n=fmt.count(rest, lang)) + " · "))
    footer.append(dcc.Link(t("alerts_see_all", lang), href="/bins", id="alerts-see-all"))
    return [
        _heading(alerts, lang),
        _counts(alerts, lang),
        html.Ul(
            [alert_row(a, lang, with_button=False) for a in top],
            className="alert-list",
            id="alerts-list-overview",
        ),
        html.P(footer, className="alert-footer"),
    ]


def bins_body(alerts: list[Alert], lang: Lang, notice: html.Div | None) -> list[Any]:
    """Every alert with its acknowledge button or acknowledgement; a notice after a click."""
    body: list[Any] = [_heading(alerts, lang)]
    if notice is not None:
        body.append(notice)
    if not alerts:
        body.append(html.P(t("alerts_none", lang), className="state state-ok", id="alerts-none"))
        return body
    body += [
        _counts(alerts, lang),
        html.Ul(
            [alert_row(a, lang, with_button=True) for a in alerts],
            className="alert-list",
            id="alerts-list-bins",
        ),
    ]
    return body


def _notice(result: Any, lang: Lang) -> html.Div | None:
    """The outcome of the last acknowledge click, as kept in the store (or nothing)."""
    if not isinstance(result, dict) or not isinstance(result.get("outcome"), str):
        return None
    outcome = result["outcome"]
    detail = str(result.get("detail") or "")[:300]
    if outcome == "done":
        text, css = t("alerts_ack_done", lang), "state state-ok"
    elif outcome == "already":
        text, css = t("alerts_ack_already", lang, who=detail or "–"), "state state-ok"
    elif outcome == "ended":
        text, css = t("alerts_ack_ended", lang), "state state-empty"
    elif outcome == "unreachable":
        text, css = t("api_unreachable", lang), "state state-error"
    else:
        text, css = t("alerts_ack_failed", lang, detail=detail or "–"), "state state-error"
    return html.Div(text, id="alerts-ack-notice", className=css, role="status")


def _problem(exc: ApiUnavailable | ApiRefused, lang: Lang, page: str) -> html.Div:
    """The page's own API message (dashboard/states.py) under an id of the panel's: the page
    shows its message too, and two elements must not share one id."""
    shown = api_problem(exc, lang)
    css = getattr(shown, "className", "state state-error")
    return html.Div(shown.children, id=f"alerts-problem-{page}", className=css, role="alert")


def overview_now(client: ApiClient, lang: Lang) -> list[Any]:
    """The overview's compact panel as the API answers now (or its message)."""
    try:
        alerts = client.alerts()
    except (ApiUnavailable, ApiRefused) as exc:
        return [html.H2(t("alerts_title", lang)), _problem(exc, lang, "overview")]
    return overview_body(alerts, lang)


@callback(
    Output("alerts-body-overview", "children"),
    Input("lang", "data"),
    Input("tick", "n_intervals"),
    Input("ov-alerts-late", "n_intervals"),  # once, when the layout could not wait for them
    prevent_initial_call=True,  # the overview's layout draws the panel's first view
)
def render_overview(stored_lang: Any, _tick: Any, _late: Any) -> list[Any]:
    """The overview's compact panel, refreshed with the page."""
    return overview_now(get_client(), as_lang(stored_lang))


@callback(
    Output("alerts-body-bins", "children"),
    Input("lang", "data"),
    Input("tick", "n_intervals"),
    Input("alerts-ack-result", "data"),
)
def render_bins(stored_lang: Any, _tick: Any, result: Any) -> list[Any]:
    """The bins page's full list, redrawn after every acknowledge click."""
    lang = as_lang(stored_lang)
    try:
        alerts = get_client().alerts()
    except (ApiUnavailable, ApiRefused) as exc:
        return [html.H2(t("alerts_title", lang)), _problem(exc, lang, "bins")]
    return bins_body(alerts, lang, _notice(result, lang))


def _clicked_alert() -> str | None:
    """The alert id of a button really clicked (not one just drawn, with no clicks)."""
    ids = ctx.triggered_prop_ids
    for item in ctx.triggered or []:
        value = item.get("value") if isinstance(item, dict) else None
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            continue
        button = ids.get(str(item.get("prop_id")))
        if isinstance(button, dict) and button.get("type") == ACK_BUTTON:
            alert_id = button.get("alert")
            if isinstance(alert_id, str) and 0 < len(alert_id) <= 200:
                return alert_id
    return None


@callback(
    Output("alerts-ack-result", "data"),
    Input({"type": ACK_BUTTON, "alert": ALL}, "n_clicks"),
    State("lang", "data"),
    prevent_initial_call=True,
)
def acknowledge(_clicks: Any, _lang: Any) -> Any:
    """Acknowledge the clicked alert as the logged-in user; keep the outcome for the list."""
    try:
        alert_id = _clicked_alert()
    except (AttributeError, TypeError, ValueError):  # a hand-made request of another shape
        return no_update
    if alert_id is None:
        return no_update
    try:
        ack = get_client().acknowledge_alert(alert_id)
    except ApiRefused as exc:
        outcome = "ended" if exc.status == 404 else "failed"
        return {"alert_id": alert_id, "outcome": outcome, "detail": exc.detail}
    except ApiUnavailable:
        return {"alert_id": alert_id, "outcome": "unreachable", "detail": ""}
    if ack.already_acknowledged:
        return {"alert_id": alert_id, "outcome": "already", "detail": ack.acknowledged_by_name}
    return {"alert_id": alert_id, "outcome": "done", "detail": ""}
