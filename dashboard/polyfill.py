"""The page loads the regenerator runtime instead of Dash's @babel/polyfill.

Dash's renderer loads @babel/polyfill 7 (core-js 2) for old browsers. In today's browsers core-js
2 still swaps several built-ins it judges non-compliant (String#trim, by an older Unicode rule on
whitespace, among others) for slower JavaScript versions, which Dash, React and Plotly then call
throughout: ~300 ms of main-thread time in a cold overview load (a Chromium CPU profile of
bench/dashboard's load). What Dash's code needs of it is the regenerator runtime (its async
functions are compiled to `regeneratorRuntime` calls), so the page loads just that, vendored from
npm (regenerator-runtime 0.14.1, MIT, licence beside it in assets/vendor/). Every browser that
runs the dashboard's other code has the rest built in.
"""

from __future__ import annotations

import re

REGENERATOR_URL = "/assets/vendor/regenerator-runtime-0.14.1.js"
_POLYFILL_TAG = re.compile(r'<script src="[^"]*/deps/polyfill@7[^"]*"></script>')


def without_polyfill(scripts: str) -> str:
    """The page's script tags with Dash's polyfill replaced by the regenerator runtime (left as
    they are when Dash no longer loads that polyfill)."""
    return _POLYFILL_TAG.sub(f'<script src="{REGENERATOR_URL}"></script>', scripts, count=1)
