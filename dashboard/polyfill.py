"""Dash's own scripts the page loads, trimmed: the regenerator runtime instead of Dash's
@babel/polyfill, and no DataTable bundle.

Dash's renderer loads @babel/polyfill 7 (core-js 2) for old browsers. In today's browsers core-js
2 still swaps several built-ins it judges non-compliant (String#trim, by an older Unicode rule on
whitespace, among others) for slower JavaScript versions, which Dash, React and Plotly then call
throughout: ~300 ms of main-thread time in a cold overview load (a Chromium CPU profile of
bench/dashboard's load). What Dash's code needs of it is the regenerator runtime (its async
functions are compiled to `regeneratorRuntime` calls), so the page loads just that, vendored from
npm (regenerator-runtime 0.14.1, MIT, licence beside it in assets/vendor/). Every browser that
runs the dashboard's other code has the rest built in.

Dash loads its DataTable library's bundle on every page whether a page uses DataTable or not. No
page of the dashboard does (its tables are html.Table: tests/test_architecture.py keeps it so), so
the page skips that script: 32 kB less to fetch and run before the first view.
"""

from __future__ import annotations

import re

REGENERATOR_URL = "/assets/vendor/regenerator-runtime-0.14.1.js"
_POLYFILL_TAG = re.compile(r'<script src="[^"]*/deps/polyfill@7[^"]*"></script>')
_DATA_TABLE_TAG = re.compile(r'<script src="[^"]*/dash/dash_table/bundle[^"]*"></script>\s*')


def without_polyfill(scripts: str) -> str:
    """The page's script tags with Dash's polyfill replaced by the regenerator runtime (left as
    they are when Dash no longer loads that polyfill)."""
    return _POLYFILL_TAG.sub(f'<script src="{REGENERATOR_URL}"></script>', scripts, count=1)


def without_data_table(scripts: str) -> str:
    """The page's script tags without Dash's DataTable bundle (no page uses DataTable)."""
    return _DATA_TABLE_TAG.sub("", scripts, count=1)


def trimmed(scripts: str) -> str:
    """The page's script tags as the dashboard loads them (both trims above)."""
    return without_data_table(without_polyfill(scripts))
