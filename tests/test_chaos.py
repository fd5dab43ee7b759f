"""Failure drill: a simulated week with every fault while ingest is SIGKILLed, the broker restarted
and PostgreSQL crashed, with the API answering throughout; afterwards nothing is missing or doubled.

Scale: testville (10 devices, 8 sites), 7 simulated days published in accelerated mode over about
24 s of wall time (bin readings every 15 min, one reading per message): about 2,900 readings
in 2,700 messages, some 20 of them malformed. Accelerated rather than backfill mode: a backfill
of the same week is published in about 2 s, too fast for three drills to land mid-stream.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest

from pisman import db, keys
from pisman.settings import PROJECT_ROOT
from tests.support.broker import Mosquitto, free_port
from tests.support.databases import Backend
from tests.support.ingest_world import IngestProcess, wait_for
from tests.support.pgcluster import PG_BIN, PrivatePostgres
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
SIM_WALL_S = 24.0  # the week is published over this many seconds: long enough for three drills
SPEED = SIM_DAYS * 86400 / SIM_WALL_S
# Readings ingest must store between one drill and the next: each drill lands while data flows.
PROGRESS_BETWEEN_DRILLS = 200
# The API's questions, asked one after another for the whole run.
DATABASE_ROUTES = (
    "/v1/meta",
    "/v1/tonnage?from=2026-10-25&to=2026-11-02&bucket=day&group_by=category",
    "/v1/progress?date=2026-10-31",
)
API_ROUTES = ("/healthz", *DATABASE_ROUTES)
ANSWERS_ALLOWED = {200, 503}


@dataclass(frozen=True, slots=True)
class Answer:
    """One API request: when (seconds into the run), what, and the status (None: no answer)."""

    at_s: float
    path: str
    status: int | None
    detail: str


class ApiPoller:
    """Asks the API its round of questions, one request at a time, until stopped; keeps every answer."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.key = key
        self.answers: list[Answer] = []
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="api-poller", daemon=True)

    def start(self) -> None:
        """Start asking in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop after the request in progress."""
        self._stop.set()
        self._thread.join(60)

    def answered(self, status: int, paths: tuple[str, ...], *, since: int = 0) -> bool:
        """Whether every one of `paths` was answered with `status`, counting from answer `since`."""
        return set(paths) <= {a.path for a in self.answers[since:] if a.status == status}

    def unexpected(self) -> list[Answer]:
        """Answers that were neither 200 nor 503 (or no answer at all)."""
        return [a for a in self.answers if a.status not in ANSWERS_ALLOWED]

    def _run(self) -> None:
        with httpx.Client(headers={"X-API-Key": self.key}, timeout=60) as client:
            while not self._stop.is_set():
                for path in API_ROUTES:
                    at = round(time.monotonic() - self._started, 2)
                    try:
                        response = client.get(self.base_url + path)
                        detail = "" if response.status_code == 200 else response.text[:300]
                        self.answers.append(Answer(at, path, response.status_code, detail))
                    except httpx.HTTPError as exc:
                        self.answers.append(Answer(at, path, None, repr(exc)))
                # Pacing only: a steady stream of requests, not a storm on two shared cores.
                self._stop.wait(0.05)


@dataclass(frozen=True, slots=True)
class ChaosWorld:
    """A private PostgreSQL (ours to crash) with testville provisioned, and a private broker."""

    pg: PrivatePostgres
    broker: Mosquitto
    files: BrokerFiles
    api_key: str
    tmp: Path


@pytest.fixture
def chaos_world(backend: Backend, tmp_path: Path) -> Iterator[ChaosWorld]:
    """The database (preloading TimescaleDB on that backend) and the broker, started and provisioned."""
    if not (PG_BIN / "initdb").exists():
        pytest.skip("PostgreSQL 15 server binaries are not installed")
    pg = PrivatePostgres(timescaledb=backend.is_timescaledb)
    broker: Mosquitto | None = None
    try:
        pg.init()
        db.ensure_database(pg.url)
        db.migrate(pg.url, PROJECT_ROOT / "sql")
        files = provision_testville(pg.url, tmp_path)
        with psycopg.connect(pg.url) as conn:
            api_key = keys.create_key(conn, role="viewer", name="chaos")
        broker = Mosquitto(
            tmp_path / "broker",
            port=free_port(),
            password_file=files.password_file,
            acl_file=files.acl_file,
        )
        broker.folder.mkdir()
        broker.start()
        yield ChaosWorld(pg, broker, files, api_key, tmp_path)
    finally:
        if broker is not None:
            broker.stop()
        pg.destroy()


def _kill_ingest(ingest: IngestProcess) -> None:
    if ingest.proc.poll() is None:
        ingest.kill()


def _stop_process(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _start_api(world: ChaosWorld, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`pisman api` as a child process; returns it and its base URL once /healthz answers."""
    port = free_port()
    env = child_env(
        DATABASE_URL=world.pg.url,
        MQTT_URL=world.broker.url,
        PISMAN_CITY="testville",
        PISMAN_DATA_DIR=str(world.tmp),
        API_PORT=str(port),
        API_POOL_TIMEOUT_S="2",
        API_RATE_LIMIT_PER_MIN="0",  # the drill is about outages, not about our own request rate
    )
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pisman", "api"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=PROJECT_ROOT,
        )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert proc.poll() is None, log_path.read_text(errors="replace")[-3000:]
        try:
            return httpx.get(base + "/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_for(healthy, timeout=60, interval=0.2, what="the API's /healthz")
    return proc, base


def _start_simulator(world: ChaosWorld, report: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """The simulator publishing a week of testville with every fault, in accelerated mode."""
    env = child_env(
        MQTT_URL=world.broker.url,
        DATABASE_URL=world.pg.url,
        PISMAN_DATA_DIR=str(world.tmp),
    )
    cmd = [sys.executable, "-m", "pisman", "simulate", "run", "--city-file", str(TESTVILLE),
           "--credentials", str(world.files.credentials), "--mode", "accelerated",
           "--end", SIM_START, "--speed", str(SPEED), "--duration", str(SIM_WALL_S),
           "--bin-interval", "900", "--faults", "all", "--seed", "7",
           "--report", str(report), "--quiet"]  # fmt: skip
    with log_path.open("wb") as log:
        return subprocess.Popen(
            cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT
        )


def _connects(ingest: IngestProcess) -> int:
    return sum(" mqtt_connected " in line for line in ingest.lines)


def _stored_readings_reach(db_url: str, target: int) -> Callable[[], bool]:
    return lambda: stored_counts(db_url)[0] >= target


def test_week_of_faults_through_ingest_kill_broker_restart_and_database_crash_loses_and_doubles_nothing(
    chaos_world: ChaosWorld,
) -> None:
    w = chaos_world
    url = w.pg.url
    ingest_env = {
        "DATABASE_URL": url,
        # Client id = account: the broker binds them, so a restarted ingest resumes the session.
        "MQTT_URL": f"mqtt://ingest:{INGEST_PASSWORD}@127.0.0.1:{w.broker.port}",
        "PISMAN_DATA_DIR": str(w.tmp),
    }
    report_path, sim_log, api_log = w.tmp / "report.json", w.tmp / "sim.log", w.tmp / "api.log"
    with ExitStack() as cleanup:
        first = IngestProcess(ingest_env)
        cleanup.callback(_kill_ingest, first)
        first.wait_ready(30)
        api, base = _start_api(w, api_log)
        cleanup.callback(_stop_process, api)
        poller = ApiPoller(base, w.api_key)
        poller.start()
        cleanup.callback(poller.stop)
        sim = _start_simulator(w, report_path, sim_log)
        cleanup.callback(_stop_process, sim)

        def still_publishing(drill: str) -> None:
            assert sim.poll() is None, (
                f"the simulator finished before the {drill}: the drill must land mid-stream"
                f" (exit {sim.returncode}):\n{sim_log.read_text(errors='replace')[-2000:]}"
            )

        # 1. ingest dies without a goodbye; a new one with the same account takes its session over.
        wait_for(
            _stored_readings_reach(url, PROGRESS_BETWEEN_DRILLS),
            timeout=60,
            interval=0.2,
            what=f"ingest storing a first part; ingest log:\n{first.tail()}",
        )
        still_publishing("ingest SIGKILL")
        first.kill()
        second = IngestProcess(ingest_env)
        cleanup.callback(_kill_ingest, second)
        second.wait_ready(30)

        # 2. the broker restarts (gracefully: its persistence keeps ingest's queued messages).
        wait_for(
            _stored_readings_reach(url, stored_counts(url)[0] + PROGRESS_BETWEEN_DRILLS),
            timeout=60,
            interval=0.2,
            what=f"the new ingest storing; its log:\n{second.tail()}",
        )
        still_publishing("broker restart")
        connects_before = _connects(second)
        w.broker.stop()
        w.broker.start()
        wait_for(
            lambda: _connects(second) > connects_before,
            timeout=60,
            interval=0.1,
            what=f"ingest reconnecting to the restarted broker; its log:\n{second.tail()}",
        )

        # 3. PostgreSQL crashes (immediate stop: no checkpoint, every connection cut) and comes
        # back only once every database route of the API has answered 503 and ingest has noticed.
        wait_for(
            _stored_readings_reach(url, stored_counts(url)[0] + PROGRESS_BETWEEN_DRILLS),
            timeout=60,
            interval=0.2,
            what=f"ingest storing after the broker restart; its log:\n{second.tail()}",
        )
        still_publishing("PostgreSQL crash")
        answers_before_crash = len(poller.answers)
        w.pg.stop("immediate")
        try:
            # (Any other answer ends the wait too: it is reported below, with the API's log.)
            wait_for(
                lambda: (
                    (
                        poller.answered(503, DATABASE_ROUTES, since=answers_before_crash)
                        and second.logged("database_unavailable")
                    )
                    or poller.unexpected()
                ),
                timeout=60,
                interval=0.1,
                what="a 503 from each database route and database_unavailable from ingest",
            )
        finally:
            w.pg.start()

        assert sim.wait(120) == 0, sim_log.read_text(errors="replace")[-3000:]
        report = json.loads(report_path.read_text())
        faults = report["faults_injected"]
        assert all(
            faults[name] > 0
            for name in ("dup", "reorder", "offline", "malformed", "skew", "noise", "outlier")
        ), faults
        totals = report["totals"]
        assert totals["duplicates_sent"] > 0 and totals["invalid"] > 0
        wait_until_stored(url, totals["valid"], totals["invalid"], timeout=120, stall_s=30)
        assert second.proc.poll() is None, "ingest must ride out the broker and database restarts"

        assert_reconciles(url, report, min_days=SIM_DAYS)

        poller.stop()
        unexpected = poller.unexpected()
        assert not unexpected, (
            f"{len(unexpected)} of {len(poller.answers)} API answers were neither 200 nor 503:\n"
            + "\n".join(f"{a.at_s}s {a.path} -> {a.status}: {a.detail}" for a in unexpected[:10])
            + "\nAPI log:\n"
            + api_log.read_text(errors="replace")[-4000:]
        )
        for path in API_ROUTES:
            response = httpx.get(base + path, headers={"X-API-Key": w.api_key}, timeout=60)
            assert response.status_code == 200, (path, response.status_code, response.text[:300])
        assert second.terminate() == 0
