"""Command-line entry for the dashboard: `pisman dashboard` serves it."""

from __future__ import annotations

import argparse
import logging

from pisman.logs import log_event, setup_logging
from pisman.settings import get_settings

logger = logging.getLogger("pisman.dashboard")


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Serve the dashboard with waitress (a production WSGI server) or, with --debug, Dash's dev server."""
    from dashboard.app import create_app

    settings = get_settings()
    setup_logging(settings.LOG_LEVEL)
    host = args.host or settings.DASHBOARD_HOST
    port = args.port or settings.DASHBOARD_PORT
    app = create_app()
    log_event(
        logger,
        logging.INFO,
        "dashboard_start",
        url=f"http://{host}:{port}/",
        api=settings.API_URL,
        refresh_s=settings.DASHBOARD_REFRESH_S,
    )
    print(f"dashboard on http://{host}:{port}/ (API {settings.API_URL})", flush=True)
    if args.debug:
        app.run(host=host, port=port, debug=True)
        return 0
    from waitress.server import create_server

    # waitress.serve() would print its own "Serving on" line (silenced only by a private test
    # shim); the line above already says where the dashboard is, so build the server directly.
    create_server(
        app.server, host=host, port=port, threads=args.threads, ident="pisman-dashboard"
    ).run()
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add `pisman dashboard`."""
    p = sub.add_parser(
        "dashboard", help="serve the Dash dashboard (reads its numbers from the API)"
    )
    p.add_argument("--host", default=None, help="listen address (default: DASHBOARD_HOST)")
    p.add_argument("--port", type=int, default=None, help="port (default: DASHBOARD_PORT)")
    p.add_argument("--threads", type=int, default=8, help="waitress worker threads")
    p.add_argument("--debug", action="store_true", help="Dash's development server with hot reload")
    p.set_defaults(func=cmd_dashboard)
