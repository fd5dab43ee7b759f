"""Login for the dashboard: a login page, logout, and a server-side session.

The session lives in Flask's signed cookie (HttpOnly, SameSite=Lax, Secure with
DASHBOARD_COOKIE_SECURE; key DASHBOARD_SECRET_KEY or var/dashboard-secret) and holds the user's
API session token: every API call made for the user carries that token (dashboard/client.py), so
the API applies the user's role and city limits. Every page, callback and download needs a
session except the login page and static files; without one a page goes to the login page and a
callback gets 401.

A user allowed on more than one city picks one in the top bar (a POST to /city, checked against
the API's GET /v1/cities for that user); the choice is kept in the same session and every API
call made for the user asks about it (current_city()).
"""

from __future__ import annotations

import contextlib
import hmac
import html
import logging
import secrets
import time
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import dash
import flask
import httpx

from dashboard.client import ApiRefused, ApiUnavailable, base_client, record_call
from dashboard.i18n import LANG_COOKIE, as_lang, t
from pisman.logs import log_event
from pisman.settings import Settings, get_settings
from pisman.users import LOCKOUT_AFTER, ensure_secret_file

logger = logging.getLogger("pisman.dashboard.auth")

TOKEN = "api_token"
CITY = "city"  # the city the user chose in the top bar
# Scripts and styles: the same for everyone, cacheable, no login needed.
STATIC_PREFIXES = ("/assets/", "/_dash-component-suites/", "/_pisman/static/")
PUBLIC_PREFIXES = ("/login", *STATIC_PREFIXES, "/_favicon.ico")
RECHECK_S = 60.0  # ask the API whether the session still lives at most this often


def _t(key: str, lang: str, **values: Any) -> str:
    """The login page's text `key` (dashboard/i18n.py, `login_<key>`)."""
    return t(f"login_{key}", as_lang(lang), **values)


def current_token() -> str | None:
    """The API session token of the user of this request, or None."""
    if not flask.has_request_context():
        return None
    token = flask.session.get(TOKEN)
    return token if isinstance(token, str) else None


def current_role() -> str | None:
    """The role of the user of this request (viewer, planner, admin), or None."""
    if not flask.has_request_context():
        return None
    role = flask.session.get("role")
    return role if isinstance(role, str) else None


def current_city() -> str | None:
    """The city this request's user chose in the top bar; before any choice PISMAN_CITY, or
    the first of the user's cities when the user is limited to others. None outside a request."""
    if not flask.has_request_context():
        return None
    chosen = flask.session.get(CITY)
    if isinstance(chosen, str):
        return chosen
    default = get_settings().PISMAN_CITY
    limits = flask.session.get("cities")
    if isinstance(limits, list) and limits and default not in limits:
        first = limits[0]
        return first if isinstance(first, str) else default
    return default


def csrf_token() -> str:
    """The session's token for the dashboard's own forms (made on first use)."""
    csrf = flask.session.get("csrf")
    if not isinstance(csrf, str):
        csrf = secrets.token_urlsafe(24)
        flask.session["csrf"] = csrf
    return csrf


def note_session_ended() -> None:
    """The API answered 401 to this request's user token: end the dashboard session too."""
    if flask.has_request_context():
        flask.g.pisman_session_ended = True


def can_export() -> bool:
    """Whether this request's user may download exports (planner or admin)."""
    return current_role() in ("planner", "admin")


def _safe_next(target: str | None) -> str:
    """Only a path of this site (no scheme, no //host) is followed after login."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    if target.startswith("/login"):
        return "/"
    return target


def _page(lang: str, message: str | None, username: str, next_url: str, status: int) -> Any:
    csrf = csrf_token()
    other = "en" if lang != "en" else "id"
    alert = (
        f'<p id="login-error" class="state state-error" role="alert">{html.escape(message)}</p>'
        if message
        else ""
    )
    body = f"""<!DOCTYPE html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_t("title", lang)} – Kang PisMan</title>
<link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-body">
<main class="page page-login" style="max-width:24rem;margin:3rem auto;padding:0 1rem">
<h1>{_t("heading", lang)}</h1>
<p><a id="login-lang" href="/login?lang={other}&amp;next={quote(next_url)}">{_t("switch", lang)}</a></p>
{alert}
<form id="login-form" method="post" action="/login">
<input type="hidden" name="csrf" value="{html.escape(csrf)}">
<input type="hidden" name="lang" value="{lang}">
<input type="hidden" name="next" value="{html.escape(next_url)}">
<p><label for="username">{_t("username", lang)}</label><br>
<input id="username" name="username" autocomplete="username" required maxlength="64"
 value="{html.escape(username)}"></p>
<p><label for="password">{_t("password", lang)}</label><br>
<input id="password" name="password" type="password" autocomplete="current-password" required
 maxlength="1024"></p>
<p><button id="login-submit" type="submit" class="button">{_t("submit", lang)}</button></p>
</form></main></body></html>"""
    response = flask.make_response(body, status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


def _notice(lang: str, message: str, back_url: str, status: int) -> Any:
    """A small page with one message and a way back (a refused or failed form)."""
    body = f"""<!DOCTYPE html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Kang PisMan</title>
<link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-body">
<main class="page page-login" style="max-width:32rem;margin:3rem auto;padding:0 1rem">
<p id="notice" class="state state-error" role="alert">{html.escape(message)}</p>
<p><a id="notice-back" href="{html.escape(back_url)}">{_t("back", lang)}</a></p>
</main></body></html>"""
    response = flask.make_response(body, status)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    return response


def install(app: dash.Dash, settings: Settings, api_url: str) -> None:
    """Add the login page, logout and the session check to the dashboard's Flask server."""
    server = app.server
    server.secret_key = settings.DASHBOARD_SECRET_KEY or ensure_secret_file(
        settings.PISMAN_DATA_DIR / "dashboard-secret"
    )
    server.config.update(
        SESSION_COOKIE_NAME="pisman_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.DASHBOARD_COOKIE_SECURE,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.PISMAN_SESSION_HOURS),
    )
    http = httpx.Client(base_url=api_url, timeout=10.0)

    def _lang() -> str:
        lang = flask.request.values.get("lang") or flask.request.cookies.get(LANG_COOKIE)
        return "en" if lang == "en" else "id"

    def end_session() -> None:
        flask.session.clear()

    def api_session_lives(token: str) -> bool | None:
        """True/False from the API; None when it cannot be asked (keep the session)."""
        started = time.perf_counter()
        try:
            r = http.get("/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError:
            return None
        record_call("/v1/auth/me", (time.perf_counter() - started) * 1000)
        if r.status_code == 401:
            return False
        return True if r.status_code == 200 else None

    @server.before_request
    def require_login() -> Any:
        path = flask.request.path
        if path.startswith(PUBLIC_PREFIXES) or path == "/logout":
            return None
        token = current_token()
        if token is not None:
            checked = flask.session.get("checked_at")
            fresh = isinstance(checked, int | float) and time.time() - checked < RECHECK_S
            if fresh:
                return None
            lives = api_session_lives(token)
            if lives is not False:
                if lives:
                    flask.session["checked_at"] = time.time()
                return None
            end_session()
            expired = True
        else:
            expired = False
        if path.startswith("/_dash-") or flask.request.method != "GET":
            return flask.make_response(
                "sesi berakhir atau belum masuk / not logged in or session ended: log in at /login",
                401,
            )
        target = "/login?next=" + quote(flask.request.full_path.rstrip("?"), safe="")
        if expired:
            target += "&expired=1"
        return flask.redirect(target, 302)

    @server.after_request
    def no_store(response: flask.Response) -> flask.Response:
        if flask.g.get("pisman_session_ended"):
            # The API no longer knows the token: the callback answers 401 (the page then goes
            # to the login page, assets/session-expiry.js) and the cookie is emptied.
            end_session()
            response = flask.make_response("sesi berakhir / session ended: log in again", 401)
        # Nothing shown to a logged-in user may be kept: the back button after logout must not
        # bring the figures back from a cache.
        if not flask.request.path.startswith(STATIC_PREFIXES):
            response.headers["Cache-Control"] = "no-store"
        return response

    def login_view() -> Any:
        lang = _lang()
        next_url = _safe_next(flask.request.values.get("next"))
        if flask.request.method == "GET":
            message = _t("expired", lang) if flask.request.args.get("expired") else None
            return _page(lang, message, "", next_url, 200)
        form = flask.request.form
        username = (form.get("username") or "")[:64]
        password = form.get("password") or ""
        sent = form.get("csrf") or ""
        expected = flask.session.get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
            flask.session.pop("csrf", None)
            return _page(lang, _t("bad_form", lang), username, next_url, 400)
        if not username or not password or len(password) > 1024:
            return _page(lang, _t("wrong", lang), username, next_url, 401)
        try:
            r = http.post("/v1/auth/login", json={"username": username, "password": password})
        except httpx.HTTPError as exc:
            log_event(logger, logging.WARNING, "login_api_unreachable", error=type(exc).__name__)
            return _page(lang, _t("unreachable", lang), username, next_url, 503)
        if r.status_code == 200:
            answer = r.json()
            end_session()  # a new session id for the new login (no fixation)
            flask.session.permanent = True
            flask.session[TOKEN] = answer["token"]
            flask.session["username"] = answer["user"]["username"]
            flask.session["display_name"] = answer["user"]["display_name"]
            flask.session["role"] = answer["user"]["role"]
            flask.session["cities"] = [c for c in answer["user"]["cities"] if isinstance(c, str)]
            flask.session["checked_at"] = time.time()
            # Made now, not on the first page: the page's parallel requests would each send back
            # the cookie, and one without the token could overwrite the one with it.
            csrf_token()
            return flask.redirect(next_url, 303)
        if r.status_code == 429 and "locked" in r.text:
            seconds = int(r.headers.get("Retry-After", "900") or 900)
            minutes = max(1, -(-seconds // 60))
            return _page(
                lang, _t("locked", lang, n=LOCKOUT_AFTER, m=minutes), username, next_url, 429
            )
        if r.status_code == 429:
            return _page(lang, _t("unreachable", lang), username, next_url, 429)
        if r.status_code == 403:
            return _page(lang, _t("disabled", lang), username, next_url, 403)
        if r.status_code >= 500:
            log_event(logger, logging.WARNING, "login_api_failed", status=r.status_code)
            return _page(lang, _t("unreachable", lang), username, next_url, 503)
        return _page(lang, _t("wrong", lang), username, next_url, 401)

    def logout_view() -> Any:
        token = current_token()
        if token is not None:
            # The cookie goes anyway; if the API is away its session ends by expiry.
            with contextlib.suppress(httpx.HTTPError):
                http.post("/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
        end_session()
        return flask.redirect("/login", 303)

    def choose_city_view() -> Any:
        """POST /city: keep the user's choice of city if the API lets that user see it."""
        form = flask.request.form
        lang = _lang()
        next_url = _safe_next(form.get("next"))
        sent = form.get("csrf") or ""
        expected = flask.session.get("csrf")
        if not isinstance(expected, str) or not hmac.compare_digest(sent, expected):
            return _notice(lang, _t("bad_form", lang), next_url, 400)
        wanted = (form.get("city") or "")[:64]
        try:
            allowed = base_client().for_token(current_token()).cities()
        except ApiUnavailable:
            return _notice(lang, _t("unreachable", lang), next_url, 503)
        except ApiRefused as exc:
            return _notice(lang, exc.detail, next_url, exc.status)
        if wanted not in {c.city_id for c in allowed.cities}:
            log_event(
                logger,
                logging.WARNING,
                "city_choice_refused",
                user=flask.session.get("username"),
                city=wanted,
            )
            return _notice(lang, _t("city_refused", lang, city=repr(wanted)), next_url, 403)
        flask.session[CITY] = wanted
        return flask.redirect(next_url, 303)

    server.add_url_rule("/city", "pisman_city", choose_city_view, methods=["POST"])
    server.add_url_rule("/login", "pisman_login", login_view, methods=["GET", "POST"])
    server.add_url_rule("/logout", "pisman_logout", logout_view, methods=["POST"])
