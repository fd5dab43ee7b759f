"""End to end: the simulator publishes through a private, authenticating broker into the real ingest service,
and what is stored and quarantined reconciles exactly with the simulator's own report."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pisman.settings import PROJECT_ROOT
from tests.support.broker import Mosquitto, free_port
from tests.support.reconcile import (
    INGEST_PASSWORD,
    TESTVILLE,
    assert_reconciles,
    child_env,
    provision_testville,
    wait_for_log_line,
    wait_until_stored,
)

END = "2026-11-01T00:00:00+07:00"

pytestmark = pytest.mark.slow


@dataclass
class Stack:
    """A migrated database with testville provisioned, a private broker, and ingest running."""

    db_url: str
    broker: Mosquitto
    credentials: Path
    tmp: Path


@pytest.fixture
def stack(db_url: str, tmp_path: Path) -> Iterator[Stack]:
    """Everything the simulator publishes into, started in the order a deployment would."""
    files = provision_testville(db_url, tmp_path)
    broker = Mosquitto(
        tmp_path / "broker",
        port=free_port(),
        password_file=files.password_file,
        acl_file=files.acl_file,
    )
    broker.folder.mkdir()
    broker.start()
    log_path = tmp_path / "ingest.log"
    env = child_env(
        DATABASE_URL=db_url,
        MQTT_URL=f"mqtt://ingest:{INGEST_PASSWORD}@127.0.0.1:{broker.port}",
        INGEST_METRICS_PORT="0",
        INGEST_CLIENT_ID=f"ingest-{broker.port}",
        PISMAN_DATA_DIR=str(tmp_path),
    )
    with log_path.open("wb") as log:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "pisman", "ingest"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
    try:
        wait_for_log_line(log_path, "ingest_ready", ingest, 30)
        yield Stack(db_url, broker, files.credentials, tmp_path)
    finally:
        ingest.terminate()
        try:
            ingest.wait(10)
        except subprocess.TimeoutExpired:
            ingest.kill()
            ingest.wait(5)
        broker.stop()


def _simulate(stack: Stack, *args: str) -> dict:  # type: ignore[type-arg]
    report = stack.tmp / "report.json"
    env = child_env(
        DATABASE_URL=stack.db_url,
        MQTT_URL=f"mqtt://127.0.0.1:{stack.broker.port}",
        PISMAN_DATA_DIR=str(stack.tmp),
    )
    cmd = [sys.executable, "-m", "pisman", "simulate", "run", "--city-file", str(TESTVILLE),
           "--credentials", str(stack.credentials), "--mode", "backfill", "--end", END, "--seed", "7",
           "--report", str(report), "--quiet", *args]  # fmt: skip
    done = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT
    )
    assert done.returncode == 0, done.stderr + stack.broker.log_text()
    return json.loads(report.read_text())


def test_week_with_every_fault_reconciles_with_what_was_stored_and_quarantined(
    stack: Stack,
) -> None:
    # --batch 1: one reading per message (except store-and-forward flushes), so that
    # duplicates and out-of-order delivery happen often enough in a small city.
    report = _simulate(stack, "--days", "7", "--faults", "all", "--batch", "1")
    faults = report["faults_injected"]
    assert all(
        faults[name] > 0
        for name in ("dup", "reorder", "offline", "malformed", "skew", "noise", "outlier")
    ), faults
    totals = report["totals"]
    assert totals["duplicates_sent"] > 0 and totals["invalid"] > 0
    wait_until_stored(stack.db_url, totals["valid"], totals["invalid"])
    assert_reconciles(stack.db_url, report)


def test_gateway_mode_publishes_every_device_through_one_account(stack: Stack) -> None:
    report = _simulate(stack, "--days", "1", "--gateway")
    totals = report["totals"]
    assert totals["invalid"] == 0 and totals["duplicates_sent"] == 0
    assert len([d for d in report["devices"].values() if d["valid"] > 0]) >= 8
    wait_until_stored(stack.db_url, totals["valid"], 0)
