"""The first view of a page comes with the app's layout, not one callback later.

Dash pages draws a page in two steps after its scripts have started: the renderer fetches the
app's layout (/_dash-layout: the top bar and an empty page container), then its location
component reports the address and a callback answers with the page's layout, whose own callbacks
then fetch the figures: three round trips one after another. Here the layout request draws the
page the browser is on straight into the container, in the user's language (the `pisman_lang`
cookie), and presets the location component with that address so that Dash's router has nothing
to answer; the page's own first view can then carry its figures too (the overview does).
The index page preloads /_dash-layout (dashboard/app.py), so all this happens while the browser
is still starting Dash's scripts.

The layout request learns the address from its Referer, which the dashboard sends to itself
only (Referrer-Policy: same-origin). Without one (a proxy that strips it, a hand-made request),
or for an address that is no page, the container is Dash's own and the router draws the page.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dash
import flask
from dash import dcc, html

log = logging.getLogger(__name__)

# Dash pages' component ids (dash.dash._ID_*): its router callback reads and writes these.
LOCATION, CONTENT, STORE, DUMMY = (
    "_pages_location",
    "_pages_content",
    "_pages_store",
    "_pages_dummy",
)
MAX_ADDRESS = 2048  # longer Referers are not addresses our pages make


def requested_address() -> tuple[str, str, str] | None:
    """(path, query with its "?", address without fragment) of the dashboard page asking for the
    layout, from the request's Referer, or None when there is none from this origin."""
    referrer = flask.request.headers.get("Referer", "")
    if not referrer or len(referrer) > MAX_ADDRESS:
        return None
    try:
        parts = urlsplit(referrer)
    except ValueError:
        return None
    if f"{parts.scheme}://{parts.netloc}/" != flask.request.host_url:
        return None
    path = parts.path or "/"
    search = f"?{parts.query}" if parts.query else ""
    return path, search, f"{parts.scheme}://{parts.netloc}{path}{search}"


def _page_at(path: str) -> dict[str, Any] | None:
    """The registered page whose path is `path` (no path templates here)."""
    wanted = path.strip("/")
    for page in dash.page_registry.values():
        if page["path"].strip("/") == wanted and not page.get("path_template"):
            return dict(page)
    return None


def preloads_plotly(path: str) -> bool:
    """Whether the index page at `path` preloads Plotly: unless its page draws a first view
    without it (registered with preload_plotly=False: the overview). Unknown addresses do."""
    page = _page_at(path)
    return page is None or bool(page.get("preload_plotly", True))


def _query(search: str) -> dict[str, Any]:
    """The query as Dash pages hands it to a page's layout (one value: a string; more: a list)."""
    parsed = parse_qs(search.removeprefix("?"), keep_blank_values=True)
    return {k: v[0] if len(v) == 1 else v for k, v in parsed.items()}


def page_container() -> html.Div | Any:
    """Dash pages' container with the requested page drawn in, or Dash's own empty one."""
    if not flask.has_request_context():
        return dash.page_container
    address = requested_address()
    page = _page_at(address[0]) if address else None
    if address is None or page is None:
        return dash.page_container
    path, search, href = address
    layout = page.get("layout", "")
    title = page.get("title", "")
    try:
        content = layout(**_query(search)) if callable(layout) else layout
        title = title() if callable(title) else title
    except Exception:  # the router draws the page (and shows the error the usual way)
        log.exception("first view of %s failed; leaving it to the router", path)
        return dash.page_container
    return html.Div(
        [
            # Every location property preset: the component reports nothing on mount, so the
            # router callback (prevent_initial_call) does not draw the page a second time.
            dcc.Location(
                id=LOCATION,
                refresh="callback-nav",
                pathname=path,
                search=search,
                href=href,
                hash="",
            ),
            html.Div(content, id=CONTENT, disable_n_clicks=True),
            dcc.Store(id=STORE, data={"title": title}),
            html.Div(id=DUMMY, disable_n_clicks=True),
        ]
    )
