"""Run the real `pisman` command line in a subprocess with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys

from pisman.settings import PROJECT_ROOT


def run_pisman(
    *args: str, env: dict[str, str] | None = None, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """The real command line, in its own process, with only the environment given."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PISMAN_", "DATABASE_URL", "MQTT_", "API_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "pisman", *args],
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        cwd=PROJECT_ROOT,
    )
