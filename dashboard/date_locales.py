"""Month and day names in the page's language for the two libraries that name them themselves.

Plotly's date axes and Dash's date pickers (date-fns inside dcc) know English only: "Dec 2026"
on an Indonesian page. Both get Indonesian from Babel's CLDR data (`id_ID`), the same names
dashboard/format.py writes every other date with:

- Plotly: a locale object pushed to `window.PlotlyLocales`, which Plotly registers when its
  script runs (assets/plotly-early.js loads it later and sets the locale from <html lang>).
- The date pickers: dcc's DatePicker formats with the date-fns locale it finds in
  `window.dateFns.locale`, choosing by the browser's languages (not the page's) or else the
  first one. date-fns's own locales (vendored from npm @date-fns/cdn 4.4.0, MIT: `id`, and
  `en-US` for English) are loaded with the page; the script keeps them aside and shows the
  pickers only the page's one (`pismanUseDateLocale`, called again by the language switch),
  with Indonesian month and day names replaced by Babel's (date-fns writes August "Agt",
  CLDR "Agu") and typed Babel names accepted as well as date-fns's.

The script is generated once per process and served public (no user data), cached a day.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from babel import Locale
from babel.dates import get_day_names, get_month_names

from dashboard.i18n import LANGS

SCRIPT_PATH = "/_pisman/static/date-locales.js"  # public: dashboard/auth.STATIC_PREFIXES
# date-fns's locales, loaded before SCRIPT_PATH (dashboard/app.py).
DATE_FNS_SCRIPTS = (
    "/assets/vendor/date-fns-locale-id-4.4.0.min.js",
    "/assets/vendor/date-fns-locale-en-US-4.4.0.min.js",
)
# Babel's locale for each page language Plotly and date-fns need names for ("en" is theirs).
BABEL_LOCALES = {"id": "id_ID"}
SUNDAY_FIRST = [6, 0, 1, 2, 3, 4, 5]  # Babel counts days from Monday, Plotly and date-fns Sunday


def _names(lang: str) -> dict[str, dict[str, list[str]]]:
    """Month (January first) and day (Sunday first) names by date-fns width."""
    locale = Locale.parse(BABEL_LOCALES[lang])
    months = {
        width: [get_month_names(width, locale=locale)[m] for m in range(1, 13)]
        for width in ("narrow", "abbreviated", "wide")
    }
    days = {
        width: [get_day_names(width, locale=locale)[i] for i in SUNDAY_FIRST]
        for width in ("narrow", "short", "abbreviated", "wide")
    }
    return {"months": months, "days": days}


def locale_dictionary(lang: str) -> dict[str, Any]:
    """Plotly's locale object for `lang` (months and days; numbers keep layout.separators)."""
    names = _names(lang)
    return {
        "moduleType": "locale",
        "name": lang,
        "dictionary": {},
        "format": {
            "days": names["days"]["wide"],
            "shortDays": names["days"]["abbreviated"],
            "months": names["months"]["wide"],
            "shortMonths": names["months"]["abbreviated"],
        },
    }


# Wraps date-fns's locales with Babel's names; `names` is {lang: _names(lang)}.
_DATE_FNS_JS = """(function () {
  var names = @NAMES@;
  var loaded = (window.dateFns && window.dateFns.locale) || {};
  var locales = {en: loaded.enUS, id: loaded.id};
  function named(list, fallback) {
    return function (index, options) {
      var width = (options && options.width) || "wide";
      var own = list[width] || list.wide;
      return own && own[index] !== undefined ? own[index] : fallback(index, options);
    };
  }
  function matching(list, fallback) {
    // Babel's names first (longest first, so "Agustus" before "Agu"), then date-fns's own.
    var all = [];
    Object.keys(list).forEach(function (width) {
      if (width === "narrow") { return; }
      list[width].forEach(function (name, index) { all.push([name.toLowerCase(), index]); });
    });
    all.sort(function (a, b) { return b[0].length - a[0].length; });
    return function (text, options) {
      var lower = String(text).toLowerCase();
      for (var i = 0; i < all.length; i++) {
        if (lower.indexOf(all[i][0]) === 0) {
          var value = all[i][1];
          if (options && options.valueCallback) { value = options.valueCallback(value); }
          return {value: value, rest: String(text).slice(all[i][0].length)};
        }
      }
      return fallback(text, options);
    };
  }
  Object.keys(names).forEach(function (lang) {
    var base = locales[lang];
    if (!base) { return; }
    locales[lang] = Object.assign({}, base, {
      localize: Object.assign({}, base.localize, {
        month: named(names[lang].months, base.localize.month),
        day: named(names[lang].days, base.localize.day)
      }),
      match: Object.assign({}, base.match, {
        month: matching(names[lang].months, base.match.month),
        day: matching(names[lang].days, base.match.day)
      })
    });
  });
  // The pickers take the first locale they find: only the page's own is left in view.
  window.pismanUseDateLocale = function (lang) {
    var chosen = {};
    chosen[lang === "en" ? "en" : "id"] = locales[lang] || locales.id || locales.en;
    window.dateFns = Object.assign({}, window.dateFns, {locale: chosen});
  };
  window.pismanUseDateLocale(document.documentElement.lang || "id");
})();
"""


@cache
def locales_script() -> str:
    """The script: Plotly's locales and the date pickers' locale (see the module's text)."""
    langs = [lang for lang in LANGS if lang in BABEL_LOCALES]
    plotly = json.dumps([locale_dictionary(lang) for lang in langs], ensure_ascii=False)
    names = json.dumps({lang: _names(lang) for lang in langs}, ensure_ascii=False)
    return (
        "// Generated from Babel's CLDR data by dashboard/date_locales.py.\n"
        f"window.PlotlyLocales = (window.PlotlyLocales || []).concat({plotly});\n"
        + _DATE_FNS_JS.replace("@NAMES@", names)
    )


def page_scripts() -> list[str]:
    """The page's scripts for dates, in the order they must run."""
    return [*DATE_FNS_SCRIPTS, SCRIPT_PATH]


def install(app: Any) -> None:
    """Serve the generated script (cached for a day)."""
    import flask

    @app.server.route(SCRIPT_PATH)
    def date_locales_script() -> flask.Response:
        response = flask.Response(locales_script(), mimetype="text/javascript")
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response
