"""Broker crash drill: a simulated week with every fault while the broker is SIGKILLed twice (losing
what it had acknowledged but not yet delivered) and ingest once; the devices keep every reading
until ingest's commit ack names it, so afterwards nothing is missing or doubled.

Scale: testville (10 devices), 7 simulated days published in accelerated mode over about 30 s of
wall time (bin readings every 15 min, one reading per message): about 2,900 readings.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from pisman.settings import PROJECT_ROOT
from tests.support.broker import Mosquitto, free_port
from tests.support.ingest_world import IngestProcess, wait_for
from tests.support.reconcile import (
    INGEST_PASSWORD,
    TESTVILLE,
    BrokerFiles,
    assert_reconciles,
    child_env,
    provision_testville,
    stored_counts,
    wait_until_stored,
)

pytestmark = pytest.mark.slow

SIM_START = "2026-10-25T00:00:00+07:00"
SIM_DAYS = 7
SIM_WALL_S = 30.0  # long enough for three drills with a restarted ingest in between, under load
SPEED = SIM_DAYS * 86400 / SIM_WALL_S
ACK_TIMEOUT_S = 4  # a device resends what has no commit ack after this long
WAIT_CONFIRMED_S = 120  # the run ends when every backlog is confirmed (or fails after this)
PROGRESS_BETWEEN_DRILLS = 200  # readings stored between drills: each lands while data flows


@dataclass(frozen=True, slots=True)
class CrashWorld:
    """The suite's database with testville provisioned, and a private broker ours to kill."""

    db_url: str
    broker: Mosquitto
    files: BrokerFiles
    tmp: Path


@pytest.fixture
def crash_world(db_url: str, tmp_path: Path) -> Iterator[CrashWorld]:
    files = provision_testville(db_url, tmp_path)
    broker = Mosquitto(
        tmp_path / "broker",
        port=free_port(),
        password_file=files.password_file,
        acl_file=files.acl_file,
    )
    broker.folder.mkdir()
    broker.start()
    try:
        yield CrashWorld(db_url, broker, files, tmp_path)
    finally:
        broker.stop()


def _crash_broker(broker: Mosquitto) -> None:
    """SIGKILL (as an OOM kill or power loss would), then start it with the same config and
    persistence folder: it comes back with whatever it last saved, not what it had acknowledged."""
    assert broker.proc is not None
    broker.proc.kill()
    broker.proc.wait(10)
    broker.start()


def _kill_ingest(ingest: IngestProcess) -> None:
    if ingest.proc.poll() is None:
        ingest.kill()


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def _start_simulator(world: CrashWorld, report: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """Testville's devices with store-and-forward: a week, every fault, accelerated."""
    env = child_env(
        MQTT_URL=world.broker.url, DATABASE_URL=world.db_url, PISMAN_DATA_DIR=str(world.tmp)
    )
    cmd = [sys.executable, "-m", "pisman", "simulate", "run", "--city-file", str(TESTVILLE),
           "--credentials", str(world.files.credentials), "--mode", "accelerated",
           "--end", SIM_START, "--speed", str(SPEED), "--duration", str(SIM_WALL_S),
           "--bin-interval", "900", "--faults", "all", "--seed", "11",
           "--ack-timeout", str(ACK_TIMEOUT_S), "--wait-confirmed", str(WAIT_CONFIRMED_S),
           "--report", str(report), "--quiet"]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
        )


def _stored_grew_by(db_url: str, readings: int) -> Callable[[], bool]:
    target = stored_counts(db_url)[0] + readings
    return lambda: stored_counts(db_url)[0] >= target


def test_broker_sigkilled_twice_and_ingest_once_loses_and_doubles_nothing(
    crash_world: CrashWorld,
) -> None:
    w = crash_world
    ingest_env = {
        "DATABASE_URL": w.db_url,
        "MQTT_URL": f"mqtt://ingest:{INGEST_PASSWORD}@127.0.0.1:{w.broker.port}",
        "PISMAN_DATA_DIR": str(w.tmp),
    }
    report_path, sim_log = w.tmp / "report.json", w.tmp / "sim.log"
    with ExitStack() as cleanup:
        ingest = IngestProcess(ingest_env)
        cleanup.callback(_kill_ingest, ingest)
        ingest.wait_ready(30)
        sim = _start_simulator(w, report_path, sim_log)
        cleanup.callback(_stop_process, sim)

        def drill_lands_mid_stream(drill: str) -> None:
            wait_for(
                _stored_grew_by(w.db_url, PROGRESS_BETWEEN_DRILLS),
                timeout=60,
                interval=0.1,
                what=f"readings stored before the {drill}; ingest log:\n{ingest.tail()}",
            )
            assert sim.poll() is None, (
                f"the simulator finished before the {drill}:\n"
                + sim_log.read_text(errors="replace")[-2000:]
            )

        drill_lands_mid_stream("first broker crash")
        _crash_broker(w.broker)

        drill_lands_mid_stream("ingest SIGKILL")
        ingest.kill()
        ingest = IngestProcess(ingest_env)
        cleanup.callback(_kill_ingest, ingest)
        ingest.wait_ready(30)

        drill_lands_mid_stream("second broker crash")
        _crash_broker(w.broker)

        # The simulator exits 0 only once every device's backlog is confirmed.
        assert sim.wait(WAIT_CONFIRMED_S + 60) == 0, sim_log.read_text(errors="replace")[-3000:]
        report = json.loads(report_path.read_text())
        faults = report["faults_injected"]
        assert all(count > 0 for count in faults.values()), faults
        totals = report["totals"]
        assert totals["pending"] == 0
        # The crashes cost something that only the device side could recover.
        assert totals["resent"] > 0, totals
        assert totals["confirmed"] >= totals["valid"]
        assert totals["confirmed_quarantined"] >= totals["invalid"] > 0
        for device_id, counts in report["devices"].items():
            assert counts["pending"] == 0, device_id
        wait_until_stored(w.db_url, totals["valid"], totals["invalid"], timeout=60, stall_s=20)
        assert_reconciles(w.db_url, report, min_days=SIM_DAYS)


def test_a_gateway_carrying_every_device_gets_each_devices_commit_acks(
    crash_world: CrashWorld,
) -> None:
    w = crash_world
    ingest = IngestProcess(
        {
            "DATABASE_URL": w.db_url,
            "MQTT_URL": f"mqtt://ingest:{INGEST_PASSWORD}@127.0.0.1:{w.broker.port}",
            "PISMAN_DATA_DIR": str(w.tmp),
        }
    )
    try:
        ingest.wait_ready(30)
        report_path = w.tmp / "report.json"
        env = child_env(MQTT_URL=w.broker.url, DATABASE_URL=w.db_url, PISMAN_DATA_DIR=str(w.tmp))
        cmd = [sys.executable, "-m", "pisman", "simulate", "run", "--city-file", str(TESTVILLE),
               "--credentials", str(w.files.credentials), "--mode", "backfill", "--gateway",
               "--end", SIM_START, "--days", "1", "--faults", "malformed,outlier", "--seed", "3",
               "--wait-confirmed", "60", "--report", str(report_path), "--quiet"]  # fmt: skip
        done = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=120, cwd=PROJECT_ROOT
        )
        assert done.returncode == 0, done.stdout + done.stderr
    finally:
        _kill_ingest(ingest)
    totals = json.loads(report_path.read_text())["totals"]
    assert totals["pending"] == 0
    assert totals["confirmed"] == totals["valid"] > 0
    assert totals["confirmed_quarantined"] == totals["invalid"]
