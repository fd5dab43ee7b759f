"""What a page shows instead of figures: API unreachable, refused, no data yet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash import dcc, html, no_update

from dashboard.client import ApiRefused, ApiUnavailable, Export
from dashboard.i18n import Lang, t


def api_problem(exc: ApiUnavailable | ApiRefused, lang: Lang) -> html.Div:
    """A clear message for a failed API call (never a traceback)."""
    if isinstance(exc, ApiRefused):
        if exc.status == 404:
            return no_data(lang, detail=exc.detail)
        text = f"{t('api_error', lang)} ({exc.status}): {exc.detail}"
        return html.Div(text, id="api-error", className="state state-error", role="alert")
    return html.Div(
        t("api_unreachable", lang),
        id="api-unreachable",
        className="state state-error",
        role="alert",
    )


def no_data(lang: Lang, *, detail: str | None = None) -> html.Div:
    """The 'no data yet' notice."""
    text = t("no_data", lang) + (f" ({detail})" if detail else "")
    return html.Div(text, id="no-data", className="state state-empty", role="status")


def send_download(fetch: Callable[[], Export], lang: Lang, *, forbidden: str) -> tuple[Any, Any]:
    """A download through the user's session, as (dcc.Download data, status): the file, or no
    file and a message (`forbidden`'s text for 401/403: the user's role may not have it)."""
    try:
        file = fetch()
    except ApiRefused as exc:
        if exc.status in (401, 403):
            return no_update, html.Div(
                t(forbidden, lang), id="download-error", className="state state-error", role="alert"
            )
        return no_update, api_problem(exc, lang)
    except ApiUnavailable as exc:
        return no_update, api_problem(exc, lang)
    return dcc.send_bytes(file.content, file.filename), None
