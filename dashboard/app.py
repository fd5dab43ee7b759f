"""The Dash application: shell (navigation, language toggle, live tick) around the pages."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dash
import flask
from dash import Input, Output, State, dcc, html

from dashboard import auth, date_locales, first_view, plotly_bundle, polyfill
from dashboard.client import ApiRefused, ApiUnavailable, base_client
from dashboard.i18n import LANG_COOKIE, LANGS, Lang, as_lang, request_lang, t
from pisman.settings import get_settings

PACKAGE_DIR = Path(__file__).resolve().parent

NAV = (
    ("nav-overview", "nav_overview", "/"),
    ("nav-districts", "nav_districts", "/districts"),
    ("nav-bins", "nav_bins", "/bins"),
    ("nav-reports", "nav_reports", "/reports"),
    ("nav-collection", "nav_collection", "/collection"),
)


# Dash's default page plus preloads, fetched while the browser starts Dash's scripts: the layout
# (with the page's first view drawn in, dashboard/first_view.py) and the callbacks' map, and,
# for a page whose first view is a Plotly chart, the graph component's code and Plotly
# (dashboard/plotly_bundle.py; assets/plotly-early.js finds its address in the meta tag). The
# overview's first view is a still picture (pages/overview.py): there Plotly would only compete
# with the figures. Loading every component eagerly instead costs more.
PLOTLY_PRELOADS = """<link rel="preload" as="script" href="@PLOTLY@">
        <link rel="preload" as="script" href="/_dash-component-suites/dash/dcc/async-graph.js">
        """
INDEX_HTML = """<!DOCTYPE html>
<html lang="id">
    <head>
        {%metas%}
        <title>{%title%}</title>
        {%favicon%}
        <meta name="pisman-plotly" content="@PLOTLY@">
        @PLOTLY_PRELOADS@<link rel="preload" as="fetch" href="/_dash-layout" crossorigin>
        <link rel="preload" as="fetch" href="/_dash-dependencies" crossorigin>
        {%css%}
    </head>
    <body>
        {%app_entry%}
        <footer>
            {%config%}
            {%scripts%}
            {%renderer%}
        </footer>
    </body>
</html>"""


# Everything is served from this origin (serve_locally); the only inline scripts are Dash's own
# (its renderer start and our clientside callbacks), admitted by hash. Plotly and Dash set inline
# styles; Plotly draws images from data: URLs. No workers: no map draws with WebGL.
CSP_TEMPLATE = (
    "default-src 'self'; script-src 'self' {script_hashes}; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'none'; child-src 'none'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # Only to the dashboard itself: its layout request learns the page's address from it
    # (dashboard/first_view.py); no other site ever gets one.
    "Referrer-Policy": "same-origin",
}
# Callback answers carry the city's figures: no browser or proxy may keep them.
NO_STORE_PATHS = ("/_dash-update-component", "/_dash-layout")
VERSIONED_PATH = "/assets/vendor/"  # third-party scripts, their version in each name


def add_security_headers(app: dash.Dash) -> None:
    """Send nosniff, DENY framing, same-origin referrers and a Content-Security-Policy with every
    response."""
    policy: list[str] = []

    @app.server.after_request
    def security_headers(response: flask.Response) -> flask.Response:
        if not policy:  # after the first request every inline script is registered
            policy.append(CSP_TEMPLATE.format(script_hashes=" ".join(app.csp_hashes())))
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        response.headers.setdefault("Content-Security-Policy", policy[0])
        if flask.request.path in NO_STORE_PATHS:
            response.headers["Cache-Control"] = "no-store"
        elif flask.request.path.startswith(VERSIONED_PATH) and response.status_code == 200:
            # Each vendored file's name carries its version: a reload need not ask again.
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response


def add_server_timing(app: dash.Dash) -> None:
    """A Server-Timing header on the layout and callback answers: the request's own time and each
    API call it made (the browser's Resource Timing shows them; bench/dashboard --detail prints
    them)."""

    @app.server.before_request
    def start_clock() -> None:
        flask.g.started = time.perf_counter()

    @app.server.after_request
    def server_timing(response: flask.Response) -> flask.Response:
        if not flask.request.path.startswith("/_dash-") or "started" not in flask.g:
            return response
        total = (time.perf_counter() - flask.g.started) * 1000
        parts = [f"app;dur={total:.1f}"]
        for i, (path, ms) in enumerate(flask.g.get("api_calls", [])[:20]):
            parts.append(f'api{i};dur={ms:.1f};desc="{path[:60]}"')
        response.headers["Server-Timing"] = ", ".join(parts)
        return response


# The switcher's choice goes to the server as a plain form POST (dashboard/auth.py checks it
# against the cities the API lets this user see), then the page reloads with the new city.
CHOOSE_CITY_JS = """function(city, csrf, lang) {
  if (!city) { return window.dash_clientside.no_update; }
  var form = document.createElement('form');
  form.method = 'POST';
  form.action = '/city';
  var fields = {city: city, csrf: csrf || '', lang: lang || 'id',
                next: window.location.pathname + window.location.search};
  Object.keys(fields).forEach(function (name) {
    var input = document.createElement('input');
    input.type = 'hidden'; input.name = name; input.value = fields[name];
    form.appendChild(input);
  });
  document.body.appendChild(form);
  form.submit();
  return window.dash_clientside.no_update;
}"""


SET_LANG_JS = """function(lang) {
  lang = lang === 'en' ? 'en' : 'id';
  document.documentElement.lang = lang;
  if (window.Plotly && window.Plotly.setPlotConfig) { window.Plotly.setPlotConfig({locale: lang}); }
  if (window.pismanUseDateLocale) { window.pismanUseDateLocale(lang); }
  document.cookie = '@COOKIE@=' + lang + '; path=/; max-age=31536000; samesite=lax';
  return window.dash_clientside.no_update;
}""".replace("@COOKIE@", LANG_COOKIE)


def city_switch(lang: Lang) -> html.Div:
    """The top bar's city: a switcher for a user who may see more than one city of the
    deployment, the city's name for everyone else (nothing without a session or an API)."""
    token = auth.current_token()
    if token is None:
        return html.Div(id="city-switch", className="city-switch")
    try:
        answer = base_client().for_token(token).cities()
    except (ApiUnavailable, ApiRefused):
        return html.Div(id="city-switch", className="city-switch")
    current = auth.current_city()
    names = {c.city_id: c.name for c in answer.cities}
    if len(answer.cities) <= 1:
        return html.Div(
            html.Span(names.get(current or "", ""), id="city-name", className="city-name"),
            id="city-switch",
            className="city-switch",
        )
    return html.Div(
        [
            html.Label(t("city_switch", lang), id="city-label", htmlFor="city-choice"),
            dcc.Dropdown(
                id="city-choice",
                options=[{"label": c.name, "value": c.city_id} for c in answer.cities],
                value=current if current in names else None,
                clearable=False,
                searchable=False,
                className="city-dropdown",
            ),
            dcc.Store(id="city-csrf", data=auth.csrf_token()),
        ],
        id="city-switch",
        className="city-switch",
    )


def _shell(refresh_s: int) -> html.Div:
    lang = request_lang()
    return html.Div(
        [
            # The chosen language survives reloads (localStorage, and a cookie so that the server
            # draws first views in it); Indonesian until someone switches.
            dcc.Store(id="lang", storage_type="local", data=lang),
            dcc.Interval(id="tick", interval=refresh_s * 1000, n_intervals=0),
            html.Header(
                [
                    html.H1(t("app_title", lang), id="app-title"),
                    city_switch(lang),
                    html.Nav(
                        [
                            dcc.Link(t(key, lang), id=link_id, href=href, className="nav-link")
                            for link_id, key, href in NAV
                        ],
                        className="nav",
                    ),
                    html.Button(
                        t("switch_lang", lang),
                        id="lang-toggle",
                        className="lang-toggle",
                        n_clicks=0,
                    ),
                    # A plain form: logout works without the callback machinery (and ends the
                    # API session too, dashboard/auth.py).
                    html.Form(
                        html.Button(
                            t("logout", lang), id="logout", type="submit", className="lang-toggle"
                        ),
                        method="POST",
                        action="/logout",
                        id="logout-form",
                    ),
                ],
                className="topbar",
            ),
            html.Main(first_view.page_container(), className="content"),
        ],
        className="app",
    )


class _Dash(dash.Dash):
    """Dash with the page's scripts trimmed (dashboard/polyfill.py: no @babel/polyfill, no
    DataTable bundle), Plotly preloaded where the page's first view needs it, and the page's
    language on <html>."""

    _plotly_preloads = ""  # PLOTLY_PRELOADS with Plotly's address, set by create_app

    def interpolate_index(
        self,
        metas: Any = "",
        title: Any = "",
        css: Any = "",
        config: Any = "",
        scripts: Any = "",
        app_entry: Any = "",
        favicon: Any = "",
        renderer: Any = "",
    ) -> Any:
        page = super().interpolate_index(
            metas=metas,
            title=title,
            css=css,
            config=config,
            scripts=polyfill.trimmed(scripts),
            app_entry=app_entry,
            favicon=favicon,
            renderer=renderer,
        )
        # Plotly preloaded only for a page whose first view is a Plotly chart.
        preloads = self._plotly_preloads if first_view.preloads_plotly(flask.request.path) else ""
        page = str(page).replace("@PLOTLY_PRELOADS@", preloads, 1)
        # The page's language from the start (screen readers; Plotly's locale, plotly-early.js).
        return page.replace('<html lang="id">', f'<html lang="{request_lang()}">', 1)


def create_app() -> dash.Dash:
    """Build the dashboard (pages from dashboard/pages; JS and CSS served locally, no CDN)."""
    settings = get_settings()
    plotly_url = plotly_bundle.bundle_url()
    app = _Dash(
        __name__,
        use_pages=True,
        pages_folder=str(PACKAGE_DIR / "pages"),
        assets_folder=str(PACKAGE_DIR / "assets"),
        serve_locally=True,
        index_string=INDEX_HTML.replace("@PLOTLY@", plotly_url),
        # The vendored Plotly bundle is served (/assets/vendor/...) but loaded by
        # assets/plotly-early.js, not as one of the page's scripts.
        assets_path_ignore=["vendor"],
        external_scripts=date_locales.page_scripts(),
        title="Kang PisMan",
        update_title=None,  # type: ignore[arg-type]  # keep the tab title still during live refresh
        suppress_callback_exceptions=True,
    )
    app._plotly_preloads = PLOTLY_PRELOADS.replace("@PLOTLY@", plotly_url)
    # A function: each page load builds the top bar for its user (the city switcher).
    app.layout = lambda: _shell(settings.DASHBOARD_REFRESH_S)

    @app.callback(
        Output("lang", "data"),
        Input("lang-toggle", "n_clicks"),
        State("lang", "data"),
        prevent_initial_call=True,
    )
    def toggle_language(_clicks: int, current: str | None) -> str:
        lang = as_lang(current)
        return LANGS[(LANGS.index(lang) + 1) % len(LANGS)]

    @app.callback(
        [
            Output("app-title", "children"),
            Output("lang-toggle", "children"),
            Output("logout", "children"),
        ]
        + [Output(link_id, "children") for link_id, _key, _href in NAV],
        Input("lang", "data"),
        prevent_initial_call=True,  # the layout is drawn in the cookie's language
    )
    def translate_shell(stored: str | None) -> list[str]:
        lang = as_lang(stored)
        return [t("app_title", lang), t("switch_lang", lang), t("logout", lang)] + [
            t(key, lang) for _id, key, _href in NAV
        ]

    # Only in a multi-city user's top bar (Dash skips a callback whose output is absent).
    @app.callback(
        Output("city-label", "children"), Input("lang", "data"), prevent_initial_call=True
    )
    def translate_city_label(stored: str | None) -> str:
        return t("city_switch", as_lang(stored))

    app.clientside_callback(
        CHOOSE_CITY_JS,
        Output("city-switch", "title"),
        Input("city-choice", "value"),
        State("city-csrf", "data"),
        State("lang", "data"),
        prevent_initial_call=True,
    )
    # Tell the browser which language the page is in (screen readers, hyphenation), and the
    # server which language to draw the next first view in.
    app.clientside_callback(
        SET_LANG_JS,
        Output("app-title", "title"),
        Input("lang", "data"),
    )
    date_locales.install(app)
    add_security_headers(app)
    add_server_timing(app)  # first: its clock starts before the login check
    auth.install(app, settings, settings.API_URL)  # before the shape checks: no session, no work
    refuse_malformed_requests(app)
    return app


def _bad_location(item: object) -> bool:
    if not isinstance(item, dict) or item.get("id") != "_pages_location":
        return False
    value = item.get("value")
    if item.get("property") == "pathname":
        return value is not None and not (isinstance(value, str) and value.startswith("/"))
    return value is not None and not isinstance(value, str)


def _is_prop(item: object) -> bool:
    """One {id, property[, value]} entry of a callback request (pattern ids are dicts)."""
    return (
        isinstance(item, dict)
        and isinstance(item.get("id"), str | dict)
        and isinstance(item.get("property"), str)
    )


def _props(value: object, *, required: bool) -> bool:
    """A list of entries, each an entry or (pattern-matching ALL) a list of entries."""
    if value is None:
        return not required
    return isinstance(value, list) and all(
        _is_prop(item) or (isinstance(item, list) and all(_is_prop(i) for i in item))
        for item in value
    )


def callback_request_problem(
    body: object, callbacks: Mapping[str, Mapping[str, object]]
) -> str | None:
    """Why a /_dash-update-component body is not one Dash's renderer sends, or None.

    Dash indexes the body without checking its shape, so a hand-made request would raise
    (a 500); refusing it here keeps 500 for real bugs only.
    """
    if not isinstance(body, dict):
        return "body must be a JSON object"
    output = body.get("output")
    # Clientside callbacks are in the map too, but have no server function to call.
    if not isinstance(output, str) or "callback" not in callbacks.get(output, {}):
        return "unknown output"
    outputs = body.get("outputs")
    if not (_is_prop(outputs) or _props(outputs, required=True)):
        return "outputs must name component properties"
    if not _props(body.get("inputs"), required=True) or not _props(
        body.get("state"), required=False
    ):
        return "inputs and state must be lists of component properties"
    changed = body.get("changedPropIds", [])
    if not (isinstance(changed, list) and all(isinstance(c, str) for c in changed)):
        return "changedPropIds must be a list of strings"
    if any(_bad_location(item) for item in body["inputs"]):
        return "bad pathname"
    return None


def refuse_malformed_requests(app: dash.Dash) -> None:
    """400 for callback requests no Dash page sends, 404 for unknown component bundles.

    Only hand-made requests send these (Dash itself would answer them with 500); our own
    callbacks check their values themselves.
    """

    @app.server.before_request
    def check_callback_request() -> tuple[str, int] | None:
        if flask.request.path != "/_dash-update-component":
            return None
        body = flask.request.get_json(silent=True)
        problem = callback_request_problem(body, app.callback_map)
        if problem is None:
            return None
        return f"permintaan tidak valid / malformed request: {problem}", 400

    @app.server.errorhandler(dash.exceptions.CallbackException)
    def inputs_do_not_match(_exc: Exception) -> tuple[str, int]:
        # Raised while Dash matches the request's inputs to the callback, before our code.
        return "permintaan tidak valid / malformed request: inputs do not match", 400

    @app.server.errorhandler(dash.exceptions.DependencyException)
    def unknown_bundle(_exc: Exception) -> tuple[str, int]:
        return "tidak ditemukan / not found", 404
