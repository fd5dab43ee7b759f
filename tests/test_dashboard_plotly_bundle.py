"""The pages load Plotly's basic bundle (dashboard/plotly_bundle.py): it is vendored for the
installed plotly.js, served, and draws every trace type the dashboard's figures use."""

from __future__ import annotations

import ast
import re
from datetime import date
from pathlib import Path

import plotly.graph_objects as go
import pytest
from plotly.basedatatypes import BaseTraceType

from dashboard import plotly_bundle
from tests.support.dashboard_app import bare_dashboard

DASHBOARD = Path(plotly_bundle.__file__).resolve().parent


def _trace_types_in_source() -> dict[str, set[str]]:
    """Every trace type the dashboard's code builds (go.<Trace>(...) or fig.add_<trace>(...)),
    by file."""
    found: dict[str, set[str]] = {}
    for path in sorted(DASHBOARD.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            name, owner = node.func.attr, node.func.value
            trace: str | None = None
            if isinstance(owner, ast.Name) and owner.id == "go":
                cls = getattr(go, name, None)
                if isinstance(cls, type) and issubclass(cls, BaseTraceType):
                    trace = cls().type
            elif name.startswith("add_") and hasattr(go.Figure, name):
                kind = name.removeprefix("add_")
                if kind not in {"trace", "traces", "annotation", "shape", "hline", "vline"}:
                    trace = kind
            if trace is not None:
                found.setdefault(str(path.relative_to(DASHBOARD)), set()).add(trace)
    return found


def test_every_trace_the_dashboard_draws_is_in_the_basic_bundle() -> None:
    found = _trace_types_in_source()
    # The check sees the pages' figures: the trend's bars and the maps' scatters at least.
    assert "bar" in set().union(*found.values()) and "pages/districts.py" in found
    outside = {f: types - plotly_bundle.BASIC_TRACE_TYPES for f, types in found.items()}
    assert not any(outside.values()), outside


def test_the_vendored_basic_bundle_is_the_installed_plotlyjs_version() -> None:
    vendored = plotly_bundle.vendored_basic()
    assert vendored is not None
    version, name = vendored
    head = (plotly_bundle.VENDOR_DIR / name).read_text(encoding="utf-8")[:200]
    assert f"plotly.js (basic - minified) v{version}" in head
    # V8 compiles the whole bundle eagerly, off the main thread, only when the hint is the
    # file's very first line (plotly_bundle.py).
    assert head.startswith(plotly_bundle.COMPILE_HINT + "\n/**\n* plotly.js (basic")
    assert (plotly_bundle.VENDOR_DIR / "plotly.js-LICENSE.txt").read_text().startswith("MIT")
    if version != plotly_bundle.installed_plotlyjs_version():
        pytest.skip(
            f"plotly.js {plotly_bundle.installed_plotlyjs_version()} installed, basic bundle "
            f"vendored for {version}: the pages fall back to the full bundle (see the next test)"
        )
    assert plotly_bundle.bundle_url() == f"/assets/vendor/{name}"


def test_another_plotlyjs_version_falls_back_to_the_full_bundle() -> None:
    vendored = ("4.1.1", "plotly-basic-4.1.1.min.js")
    assert plotly_bundle.choose_url("4.1.1", vendored) == "/assets/vendor/plotly-basic-4.1.1.min.js"
    assert plotly_bundle.choose_url("4.2.0", vendored) == plotly_bundle.FULL_BUNDLE_URL
    assert plotly_bundle.choose_url("4.1.1", None) == plotly_bundle.FULL_BUNDLE_URL


def test_the_page_names_the_bundle_and_the_bundle_is_served(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = bare_dashboard(db_url, monkeypatch)
    url = plotly_bundle.bundle_url()
    preload = f'<link rel="preload" as="script" href="{url}">'
    with app.server.test_request_context("/districts"):
        index = app.index()
    # Named for assets/plotly-early.js and preloaded; never one of the page's own scripts.
    assert f'<meta name="pisman-plotly" content="{url}">' in index
    assert preload in index and "@PLOTLY" not in index
    assert f'<script src="{url}"' not in index
    # The overview's first view is a still picture (dashboard/charts.py): Plotly is named there
    # but not preloaded, so it does not compete with the figures. Unknown addresses preload it.
    for path, preloaded in (("/", False), ("/no-such-page", True), ("/collection", True)):
        with app.server.test_request_context(path):
            page = app.index()
        assert (preload in page) is preloaded, path
        assert f'<meta name="pisman-plotly" content="{url}">' in page and "@PLOTLY" not in page
    # Dash's scripts, trimmed (dashboard/polyfill.py): no core-js polyfill, no DataTable bundle.
    assert "regenerator-runtime" in index and "polyfill@" not in index
    assert "dash_table/bundle" not in index and "dash_renderer" in index
    script = app.server.test_client().get(url)  # public, like every script
    assert script.status_code == 200 and len(script.data) > 500_000
    assert b"plotly.js" in script.data[:200]


def test_plotlys_indonesian_locale_comes_from_babel_sunday_first(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from babel.dates import format_date

    from dashboard import date_locales

    names = date_locales.locale_dictionary("id")["format"]
    assert names["days"][0] == "Minggu" and names["days"][1] == "Senin"  # Sunday first
    assert len(names["shortDays"]) == 7 and len(names["months"]) == 12
    # The same month names dashboard/format.py's dates use (CLDR id_ID).
    december = date(2026, 12, 26)
    assert names["shortMonths"][11] in format_date(december, "d MMM y", locale="id_ID")
    assert names["months"][7] == "Agustus"
    app = bare_dashboard(db_url, monkeypatch)
    script = app.server.test_client().get(date_locales.SCRIPT_PATH)  # no login: no user data
    assert script.status_code == 200 and "Desember" in script.get_data(as_text=True)
    assert "max-age" in script.headers["Cache-Control"]
    with app.server.test_request_context("/"):
        assert f'<script src="{date_locales.SCRIPT_PATH}"' in app.index()
    with app.server.test_request_context("/", headers={"Cookie": "pisman_lang=en"}):
        assert '<html lang="en">' in app.index()


def test_vendored_scripts_carry_their_version_and_are_cached_for_good(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = bare_dashboard(db_url, monkeypatch)
    client = app.server.test_client()
    scripts = sorted(plotly_bundle.VENDOR_DIR.glob("*.js"))
    assert len(scripts) >= 4
    for path in scripts:
        # Immutable caching is only true while a new version means a new name.
        assert re.search(r"-\d+\.\d+\.\d+(\.min)?\.js$", path.name), path.name
        answer = client.get(f"/assets/vendor/{path.name}")
        assert answer.status_code == 200, path.name
        assert "immutable" in answer.headers["Cache-Control"], path.name
    own = client.get("/assets/plotly-early.js")  # our own assets: revalidated (Dash's ?m=)
    assert "immutable" not in (own.headers.get("Cache-Control") or "")
