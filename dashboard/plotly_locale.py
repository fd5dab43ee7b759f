"""Plotly's dates in the page's language: month and day names from Babel's CLDR data.

Plotly knows only English month names ("Des 2026" would read "Dec 2026" on a date axis). This
script registers an Indonesian locale for Plotly, made from the same CLDR data
dashboard/format.py formats every other date with; Plotly reads `window.PlotlyLocales` when its
script runs (assets/plotly-early.js loads it later), and draws in the locale named by the
page's language (plotly-early.js sets it from <html lang>, and the language switch updates it).
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from babel import Locale
from babel.dates import get_day_names, get_month_names

from dashboard.i18n import LANGS

SCRIPT_PATH = "/_pisman/static/plotly-locales.js"  # public: dashboard/auth.STATIC_PREFIXES
# Babel's locale for each page language ("en" is Plotly's own default).
BABEL_LOCALES = {"id": "id_ID"}


def locale_dictionary(lang: str) -> dict[str, Any]:
    """Plotly's locale object for `lang` (months and days; numbers keep layout.separators)."""
    locale = Locale.parse(BABEL_LOCALES[lang])
    days_from_monday = get_day_names("wide", locale=locale)
    short_from_monday = get_day_names("abbreviated", locale=locale)
    sunday_first = [6, 0, 1, 2, 3, 4, 5]  # Babel counts from Monday, Plotly from Sunday
    return {
        "moduleType": "locale",
        "name": lang,
        "dictionary": {},
        "format": {
            "days": [days_from_monday[i] for i in sunday_first],
            "shortDays": [short_from_monday[i] for i in sunday_first],
            "months": [get_month_names("wide", locale=locale)[m] for m in range(1, 13)],
            "shortMonths": [get_month_names("abbreviated", locale=locale)[m] for m in range(1, 13)],
        },
    }


@cache
def locales_script() -> str:
    """The script registering every page language Plotly lacks."""
    locales = [locale_dictionary(lang) for lang in LANGS if lang in BABEL_LOCALES]
    body = json.dumps(locales, ensure_ascii=False)
    return (
        "// Generated from Babel's CLDR data by dashboard/plotly_locale.py.\n"
        f"window.PlotlyLocales = (window.PlotlyLocales || []).concat({body});\n"
    )


def install(app: Any) -> None:
    """Serve the script (cached for a day) and load it with the page's scripts."""
    import flask

    @app.server.route(SCRIPT_PATH)
    def plotly_locales() -> flask.Response:
        response = flask.Response(locales_script(), mimetype="text/javascript")
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response
