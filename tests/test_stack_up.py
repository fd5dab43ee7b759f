"""`pisman up`: the stack comes up, a published reading shows in the API, and it stops cleanly."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import psycopg
import pytest

from pisman.settings import PROJECT_ROOT
from tests.support.broker import free_port
from tests.support.ingest_world import publisher

pytestmark = pytest.mark.slow


def _stream_lines(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def _wait_for(lines: queue.Queue[str], text: str, timeout: float, seen: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return
    raise AssertionError(f"no {text!r} within {timeout} s; output so far:\n{''.join(seen)}")


def _up_env(db_url: str, var: Path, **ports: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("PISMAN_", "DATABASE_URL", "MQTT_", "API_", "INGEST_", "DASHBOARD_"))
    }
    env.update(
        DATABASE_URL=db_url,
        PISMAN_DATA_DIR=str(var),
        PISMAN_UP_MQTT_PORT=str(ports["mqtt"]),
        PISMAN_UP_MQTTS_PORT=str(ports.get("mqtts") or free_port()),  # the devices' TLS listener
        API_PORT=str(ports["api"]),
        DASHBOARD_PORT=str(ports["dashboard"]),
        INGEST_METRICS_PORT=str(ports.get("metrics", 0)),
        PISMAN_CITY_FILE=str(PROJECT_ROOT / "data" / "cities" / "testville.yaml"),
    )
    return env


def test_up_brings_the_stack_up_and_a_published_reading_shows_in_the_api(
    db_url: str, tmp_path: Path
) -> None:
    var = tmp_path / "var"
    api_port, dash_port, mqtt_port = free_port(), free_port(), free_port()
    env = _up_env(db_url, var, api=api_port, dashboard=dash_port, mqtt=mqtt_port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pisman", "up", "--days", "1", "--duration", "240"],
        env=env,
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    threading.Thread(target=_stream_lines, args=(proc, lines), daemon=True).start()
    try:
        _wait_for(lines, "live:", 180, seen)
        # The first admin: printed once, kept 0600 in var/; the dashboard asks for a login.
        login_file = var / "dashboard-login.txt"
        assert login_file.stat().st_mode & 0o777 == 0o600
        login = dict(
            line.split(": ", 1) for line in login_file.read_text().splitlines() if ": " in line
        )
        assert any(login["username"] in line and login["password"] in line for line in seen), (
            "the password is printed once"
        )
        session = httpx.post(
            f"http://127.0.0.1:{api_port}/v1/auth/login",
            json={"username": login["username"], "password": login["password"]},
            timeout=30,
        )
        assert session.status_code == 200, session.text
        assert session.json()["user"]["role"] == "admin"
        api = httpx.Client(
            base_url=f"http://127.0.0.1:{api_port}",
            headers={"Authorization": f"Bearer {session.json()['token']}"},
            timeout=10,
        )
        home = httpx.get(f"http://127.0.0.1:{dash_port}/", timeout=10)
        assert home.status_code == 302 and home.headers["location"].startswith("/login")
        assert httpx.get(f"http://127.0.0.1:{dash_port}/login", timeout=10).status_code == 200
        assert (var / "dashboard-secret").stat().st_mode & 0o777 == 0o600

        # A new scale at the landfill gate, provisioned the way an installer would.
        device_env = {
            **env,
            "MOSQUITTO_PASSWORD_FILE": str(var / "mosquitto" / "passwords"),
            "MOSQUITTO_ACL_FILE": str(var / "mosquitto" / "acl"),
            "MOSQUITTO_PID_FILE": str(var / "mosquitto" / "mosquitto.pid"),
        }
        added = subprocess.run(
            [
                sys.executable,
                "-m",
                "pisman",
                "devices",
                "add",
                "wb-tpa-e2e",
                "--site",
                "tv-tpa",
                "--kind",
                "weighbridge",
            ],
            env=device_env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert added.returncode == 0, added.stderr
        password = next(
            line.split(":", 1)[1].split()[0]
            for line in added.stdout.splitlines()
            if "MQTT password" in line
        )
        # Stamped five days back, before the one-day backfill: a scale flushing its backlog.
        stamped = datetime.now(UTC) - timedelta(days=5)
        day = stamped.astimezone(ZoneInfo("Asia/Jakarta")).date()
        params = {
            "from": day.isoformat(),
            "to": (day + timedelta(days=1)).isoformat(),
            "bucket": "day",
            "group_by": "site",
        }

        def site_tonnes() -> float:
            response = api.get("/v1/tonnage", params=params)
            assert response.status_code == 200, response.text
            return sum(r["tonnes"] for r in response.json()["rows"] if r.get("site") == "tv-tpa")

        before = site_tonnes()
        # The broker re-reads its files on SIGHUP: connect as the installer would, retrying
        # until the new account is accepted (a refused CONNECT is not the behaviour under test).
        client = _connected_device(mqtt_port, "wb-tpa-e2e", password, deadline_s=30)
        reading = {
            "ts": stamped.isoformat(),
            "seq": 1,
            "gross_kg": 13250.0,
            "tare_kg": 6000.0,
            "material": "residual",
            "stream": "to_landfill",
            "vehicle_plate": "D 1234 XY",
        }
        info = client.publish("pisman/v1/tv-tpa/wb-tpa-e2e/weighing", json.dumps(reading), qos=1)
        info.wait_for_publish(30)
        assert info.is_published(), "the broker did not acknowledge the reading"
        published_at = time.monotonic()
        while time.monotonic() - published_at < 30:
            if abs(site_tonnes() - before - 7.25) < 1e-6:
                break
            time.sleep(0.3)
        client.loop_stop()
        client.disconnect()
        assert site_tonnes() == pytest.approx(before + 7.25, abs=1e-6), _stored_state(
            db_url, "wb-tpa-e2e"
        )
        assert time.monotonic() - published_at < 30
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0, "".join(seen)


# --- stopping ---------------------------------------------------------------------------------


def _process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, state letter) of every live process."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
        state, ppid = stat[stat.rindex(")") + 2 :].split()[:2]
        table[int(entry.name)] = (int(ppid), state)
    return table


def _descendants(pid: int) -> set[int]:
    table = _process_table()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, (ppid, _) in table.items() if ppid in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return condition()


ROLES = {
    "mosquitto": "mosquitto",
    "ingest": "pisman ingest",
    "api": "pisman api",
    "dashboard": "pisman dashboard",
    "simulate": "pisman simulate run",
}


@dataclass
class RunningUp:
    """A `pisman up` under test, its children by role, and a way to read all it printed."""

    proc: subprocess.Popen[str]
    roles: dict[str, int]
    output: Callable[[], str]


def _start_up_and_wait_until_live(db_url: str, var: Path, ports: dict[str, int]) -> RunningUp:
    """`pisman up --days 0` in its own process group, once every child runs and ingest hears it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pisman", "up", "--days", "0", "--duration", "300"],
        env=_up_env(db_url, var, **ports),
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        process_group=0,  # like a shell job: the terminal's Ctrl-C goes to this group
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []
    reader = threading.Thread(target=_stream_lines, args=(proc, lines), daemon=True)
    reader.start()
    _wait_for(lines, "live:", 180, seen)

    def rest_of_output() -> str:
        reader.join(30)
        while not lines.empty():
            seen.append(lines.get())
        return "".join(seen)

    def roles() -> dict[str, int]:
        found: dict[str, int] = {}
        for pid in _descendants(proc.pid):
            cmd = _cmdline(pid)
            for role, text in ROLES.items():
                if text in cmd.replace("-m pisman", "pisman"):
                    found.setdefault(role, pid)
        return found

    assert _until(lambda: set(roles()) == set(ROLES), 60), (roles(), "".join(seen))

    def ingest_received_messages() -> bool:
        # The simulator's first 'online' statuses: it is running, past its start-up.
        try:
            text = httpx.get(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=5).text
        except httpx.HTTPError:
            return False
        return any(
            line.startswith("pisman_ingest_messages_received_total ") and float(line.split()[1]) > 0
            for line in text.splitlines()
        )

    assert _until(ingest_received_messages, 60), "".join(seen)
    return RunningUp(proc, roles(), rest_of_output)


@pytest.mark.parametrize(
    "how",
    ["SIGTERM to the process", "SIGINT to the process group (Ctrl-C in a terminal)"],
)
def test_up_stops_every_child_and_frees_every_port_on_sigterm_and_sigint(
    db_url: str, tmp_path: Path, how: str
) -> None:
    var = tmp_path / "var"
    ports = _free_ports()
    tls_port = free_port()  # the broker's TLS listener, where `up` opens one
    up = _start_up_and_wait_until_live(db_url, var, {**ports, "mqtts": tls_port})
    proc = up.proc
    children = _descendants(proc.pid)
    try:
        assert all(_port_in_use(p) for p in ports.values()), ports
        ports["mqtts"] = tls_port
        if how.startswith("SIGTERM"):
            proc.send_signal(signal.SIGTERM)
        else:
            os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(120)
        output = up.output()
        assert code == 0, output
        left = lambda: {p: _cmdline(p) for p in children if _running(p)}  # noqa: E731
        assert _until(lambda: not left(), 10), f"still running after up exited: {left()}"
        busy = lambda: [p for p in ports.values() if _port_in_use(p)]  # noqa: E731
        assert _until(lambda: not busy(), 10), f"ports still taken: {busy()}"
        # Stopped in order, not killed: the simulator wrote its report and ingest finished
        # (committed and acknowledged) while the broker was still there.
        assert (var / "simulate-report-testville-realtime.json").exists(), output
        ingest_log = (var / "logs" / "ingest.log").read_text()
        assert "ingest_stopped" in ingest_log, ingest_log
        # A broker stopped first would show as a lost connection (a warning) in ingest's log.
        assert "warning ingest.client mqtt_disconnected" not in ingest_log, ingest_log
    finally:
        for pid in [proc.pid, *children]:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_up_reports_a_child_that_dies_and_stops_the_rest(db_url: str, tmp_path: Path) -> None:
    var = tmp_path / "var"
    ports = _free_ports()
    up = _start_up_and_wait_until_live(db_url, var, ports)
    proc = up.proc
    children = _descendants(proc.pid)
    try:
        os.kill(up.roles["ingest"], signal.SIGKILL)
        code = proc.wait(120)
        output = up.output()
        assert code == 1, output
        assert "ingest exited" in output, output
        left = lambda: {p: _cmdline(p) for p in children if _running(p)}  # noqa: E731
        assert _until(lambda: not left(), 10), f"still running after up exited: {left()}"
        assert (var / "simulate-report-testville-realtime.json").exists(), output
    finally:
        for pid in [proc.pid, *children]:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_children_of_a_killed_up_get_sigterm_from_the_kernel(db_url: str, tmp_path: Path) -> None:
    var = tmp_path / "var"
    ports = _free_ports()
    up = _start_up_and_wait_until_live(db_url, var, ports)
    children = _descendants(up.proc.pid)
    services = {up.roles[role] for role in ("ingest", "api", "dashboard", "simulate")}
    try:
        os.kill(up.proc.pid, signal.SIGKILL)  # no chance to stop anything itself
        up.proc.wait(30)
        left = lambda: {p: _cmdline(p) for p in services if _running(p)}  # noqa: E731
        assert _until(lambda: not left(), 40), f"still running after up was killed: {left()}"
    finally:
        for pid in children:  # the broker, documented as left running
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def _connected_device(
    port: int, device_id: str, password: str, *, deadline_s: float
) -> mqtt.Client:
    """An MQTT 5 client of a device, connected (CONNACK success) before the deadline."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return publisher(
                port, username=device_id, password=password, client_id=device_id, timeout_s=3
            )
        except RuntimeError:
            assert time.monotonic() < deadline, f"{device_id} was not accepted by the broker"


def _stored_state(db_url: str, device_id: str) -> str:
    """What the database holds of a device, for a failure message."""
    with psycopg.connect(db_url) as conn:
        weighings = conn.execute(
            "SELECT ts, net_kg FROM weighing WHERE device_id = %s", (device_id,)
        ).fetchall()
        quarantined = conn.execute(
            "SELECT left(reason, 200) FROM quarantine WHERE device_id = %s", (device_id,)
        ).fetchall()
    return f"stored {weighings}, quarantined {quarantined}"


def _free_ports() -> dict[str, int]:
    """A free port for each listener of an `up` (API, dashboard, MQTT, ingest metrics)."""
    return {name: free_port() for name in ("api", "dashboard", "mqtt", "metrics")}


def test_up_keeps_the_ingest_accounts_password_for_a_configured_broker(
    db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With MQTT_URL set, the broker's files were loaded once by `pisman devices sync-broker`:
    a second `up` must not give the ingest account a new password (it is kept 0600 in var/)."""
    from pisman.settings import get_settings
    from pisman.stack import INGEST_ACCOUNT, Stack, choose_broker

    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("MQTT_URL", "mqtt://broker.example:1883")
    monkeypatch.setenv("PISMAN_DATA_DIR", str(tmp_path))
    s = get_settings()
    state = tmp_path / "up-state.json"
    env: dict[str, str] = {}
    brokers = [choose_broker(s, Stack(s, tmp_path / "logs"), db_url, state, env) for _ in "12"]
    assert brokers[0] == brokers[1]
    assert (brokers[0].host, brokers[0].port) == ("broker.example", 1883)
    assert env == {}  # no broker files of our own to point at
    assert state.stat().st_mode & 0o777 == 0o600
    assert json.loads(state.read_text())["ingest_password"] == brokers[0].ingest_password
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT password_hash FROM service_account WHERE username = %s", (INGEST_ACCOUNT,)
        ).fetchone()
    assert stored is not None and brokers[0].ingest_password not in stored[0]
