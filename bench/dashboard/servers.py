"""Start the real API (uvicorn) and the dashboard (waitress) as subprocesses on free ports."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Server:
    """A running server process and its base URL."""

    url: str
    process: subprocess.Popen[bytes]


def _wait_ready(url: str, process: subprocess.Popen[bytes], *, timeout_s: float, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}: {log.read_text()[-2000:]}"
            )
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server at {url} not ready after {timeout_s}s: {log.read_text()[-2000:]}")


@contextmanager
def serve(
    args: list[str],
    *,
    env: dict[str, str],
    ready_url: str,
    base_url: str,
    log: Path,
    timeout_s: float = 30.0,
) -> Iterator[Server]:
    """Run `python <args>` with env added to ours; yield once ready_url answers; stop it at the end."""
    full_env = {**os.environ, **env}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, *args],
            env=full_env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(ready_url, process, timeout_s=timeout_s, log=log)
        yield Server(base_url, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def api_args(port: int) -> list[str]:
    """Command line of the API under uvicorn (the API's own app factory)."""
    return [
        "-m",
        "uvicorn",
        "api.app:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]


def dashboard_args(port: int) -> list[str]:
    """Command line of `pisman dashboard`."""
    return ["-m", "pisman", "dashboard", "--host", "127.0.0.1", "--port", str(port)]
