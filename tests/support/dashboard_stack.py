"""The real API and one dashboard as subprocesses over a test database (browser tests)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench.dashboard.servers import Server, api_args, dashboard_args, serve
from tests.support.broker import free_port

SERVER_START_S = 90.0  # a server starting on a busy 2-core machine (the whole suite runs beside it)


@contextmanager
def api_and_dashboard(
    db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    *,
    city: str = "testville",
    refresh_s: int = 600,
) -> Iterator[tuple[Server, Server]]:
    """`pisman api` and `pisman dashboard` (city `city`, live refresh every `refresh_s`) on free
    ports, each ready before this yields; logs in a `<name>-logs` folder."""
    logs = tmp_path_factory.mktemp(f"{name}-logs")
    api_port, dash_port = free_port(), free_port()
    api_url, dash_url = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
    env = {
        "DATABASE_URL": db_url,
        "API_URL": api_url,
        "PISMAN_CITY": city,
        "LOG_LEVEL": "WARNING",
        "DASHBOARD_REFRESH_S": str(refresh_s),
        "PISMAN_DATA_DIR": str(tmp_path_factory.mktemp(f"{name}-data")),
    }
    with (
        serve(
            api_args(api_port),
            env=env,
            ready_url=f"{api_url}/healthz",
            base_url=api_url,
            log=logs / "api.log",
            timeout_s=SERVER_START_S,
        ) as api,
        serve(
            dashboard_args(dash_port),
            env=env,
            ready_url=f"{dash_url}/_dash-layout",
            base_url=dash_url,
            log=logs / "dashboard.log",
            timeout_s=SERVER_START_S,
        ) as dash,
    ):
        yield api, dash
