"""Which Plotly script the pages load.

Every chart and map of the dashboard is a scatter, bar or pie trace on plain axes (the maps are
SVG on longitude/latitude axes, no tiles, no WebGL), so the pages load plotly.js's *basic*
bundle (1.2 MB) instead of the full one the plotly package ships (4.8 MB): a quarter of the
JavaScript to fetch and parse before the first chart is drawn (bench/dashboard). The basic
bundle is vendored from npm (plotly.js-basic-dist-min, MIT, notice beside it in
assets/vendor/) for one plotly.js version; figures are made by the installed plotly package, so
when that package carries another plotly.js version the pages fall back to its own full bundle
rather than mix versions.

The vendored file's first line is V8's explicit compile hint (`//# allFunctionsCalledOnLoad`,
Chromium 136+), added to the npm file: V8 then compiles the bundle's functions while it streams
the script in, on a background thread, instead of one by one on the main thread the first time
Plotly calls them (its start-up and first draw). bench/dashboard, cold loads alternating in one
run: 1262 ms median with the hint against 1415 ms without. Other browsers read a comment.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
VENDOR_DIR = PACKAGE_DIR / "assets" / "vendor"
# The trace types the basic bundle draws; the dashboard's figures use no other
# (tests/test_dashboard_plotly_bundle.py checks the pages' source and their figures).
BASIC_TRACE_TYPES = frozenset({"scatter", "bar", "pie"})
COMPILE_HINT = "//# allFunctionsCalledOnLoad"
FULL_BUNDLE_URL = "/_dash-component-suites/plotly/package_data/plotly.min.js"
_BASIC_NAME = re.compile(r"^plotly-basic-(\d+\.\d+\.\d+)\.min\.js$")

log = logging.getLogger(__name__)


def vendored_basic() -> tuple[str, str] | None:
    """(plotly.js version, file name) of the vendored basic bundle, or None when absent."""
    for path in sorted(VENDOR_DIR.glob("plotly-basic-*.min.js")):
        match = _BASIC_NAME.match(path.name)
        if match:
            return match.group(1), path.name
    return None


def installed_plotlyjs_version() -> str:
    """The plotly.js version the installed plotly package's figures are made for."""
    from plotly.offline import get_plotlyjs_version

    return str(get_plotlyjs_version())


def choose_url(installed: str, vendored: tuple[str, str] | None) -> str:
    """The basic bundle's URL when it is the installed plotly.js version, else the full bundle."""
    if vendored is not None and vendored[0] == installed:
        return f"/assets/vendor/{vendored[1]}"
    return FULL_BUNDLE_URL


def bundle_url() -> str:
    """Where the pages load Plotly from (logs a warning when it has to be the full bundle)."""
    installed = installed_plotlyjs_version()
    vendored = vendored_basic()
    url = choose_url(installed, vendored)
    if url == FULL_BUNDLE_URL:
        log.warning(
            "plotly.js %s installed, basic bundle vendored for %s: the pages load the full "
            "bundle (4.8 MB); vendor plotly.js-basic-dist-min@%s into dashboard/assets/vendor/",
            installed,
            vendored[0] if vendored else "no version",
            installed,
        )
    return url
