"""What a page shows instead of figures: API unreachable, refused, no data yet."""

from __future__ import annotations

from dash import html

from dashboard.client import ApiRefused, ApiUnavailable
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
