"""Command-line entry for the dashboard: `pisman dashboard` serves it."""

from __future__ import annotations

import logging

import click

from pisman.logs import log_event, setup_logging
from pisman.settings import get_settings

logger = logging.getLogger("pisman.dashboard")


@click.command("dashboard", help="serve the Dash dashboard (reads its numbers from the API)")
@click.option("--host", default=None, help="listen address (default: DASHBOARD_HOST)")
@click.option("--port", type=int, default=None, help="port (default: DASHBOARD_PORT)")
@click.option("--threads", type=int, default=8, help="waitress worker threads")
@click.option("--debug", is_flag=True, help="Dash's development server with hot reload")
def cmd_dashboard(host: str | None, port: int | None, threads: int, debug: bool) -> None:
    """Serve the dashboard with waitress (a production WSGI server) or, with --debug, Dash's dev server."""
    from dashboard.app import create_app

    settings = get_settings()
    setup_logging(settings.LOG_LEVEL)
    host = host or settings.DASHBOARD_HOST
    port = port or settings.DASHBOARD_PORT
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
    if debug:
        app.run(host=host, port=port, debug=True)
        return
    from waitress.server import create_server

    # waitress.serve() would print its own "Serving on" line (silenced only by a private test
    # shim); the line above already says where the dashboard is, so build the server directly.
    create_server(app.server, host=host, port=port, threads=threads, ident="pisman-dashboard").run()


def register(cli: click.Group) -> None:
    """Add `pisman dashboard`."""
    cli.add_command(cmd_dashboard)
