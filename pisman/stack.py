"""`pisman up`: the whole stack with a simulated city, on configured or embedded servers."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import click
import httpx

from pisman import db, devices, users
from pisman.certs import split_hosts
from pisman.citydata import City
from pisman.clierrors import CommandFailed
from pisman.embedded import (
    EmbeddedBroker,
    EmbeddedError,
    start_embedded_postgres,
    stop_embedded_postgres,
)
from pisman.settings import PROJECT_ROOT, Settings, get_settings
from pisman.users import ensure_secret_file

INGEST_ACCOUNT = "pisman-ingest"
GATEWAY_ACCOUNT = "pisman-sim-gateway"


class StackError(CommandFailed):
    """`pisman up` cannot go on; str() says why (one line, exit status 1)."""


def say(message: str) -> None:
    """Progress for the person at the terminal."""
    print(f"[pisman up] {message}", flush=True)


def _load_state(path: Path) -> dict[str, Any]:
    if path.exists():
        return dict(json.loads(path.read_text()))
    return {}


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(state, indent=2))
    path.chmod(0o600)


def choose_database(s: Settings, stack: Stack) -> str:
    """The configured database, the local server on 5432, or an embedded one, in that order."""
    if "DATABASE_URL" in s.model_fields_set:
        say(f"database: {db.redact(s.DATABASE_URL)} (from DATABASE_URL)")
        return s.DATABASE_URL
    if db.is_reachable(s.DATABASE_URL):
        say(
            f"database: {db.redact(s.DATABASE_URL)} (local server found; set DATABASE_URL to use another)"
        )
        return s.DATABASE_URL
    say(
        "database: none reachable on 127.0.0.1:5432; starting an embedded PostgreSQL under var/pgdata"
    )
    pgdata = s.PISMAN_DATA_DIR / "pgdata"
    already_running = (pgdata / "postmaster.pid").exists()
    try:
        url = start_embedded_postgres(pgdata)
    except EmbeddedError as exc:
        raise StackError(str(exc)) from None
    except Exception as exc:  # the embedded server package reports many kinds of failure
        raise StackError(f"embedded PostgreSQL failed to start: {exc}") from None
    if not already_running:
        stack.embedded_pgdata = pgdata  # ours to stop with the rest
    return url


# The order `up` stops things in: the simulator first (it sends its last statuses and writes
# its report), then the readers of the database, then ingest (it commits and acknowledges what
# it holds), then the broker it needs for those acks; an embedded PostgreSQL last.
STOP_ORDER = ("simulate", "backfill", "provision", "dashboard", "api", "ingest")
STOP_TIMEOUT_S = {"simulate": 20.0, "backfill": 20.0, "ingest": 30.0}
DEFAULT_STOP_TIMEOUT_S = 10.0
# Children that should run until `up` stops: one of them exiting stops the stack.
LONG_RUNNING = ("ingest", "api", "dashboard", "simulate")
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class StopRequested(KeyboardInterrupt):
    """SIGTERM or SIGINT reached `pisman up`: stop every child in order.

    A KeyboardInterrupt, so no `except Exception` on the way turns it into an error.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def _kill_group(pgid: int, sig: signal.Signals) -> None:
    """Signal a child's whole process group (it may already be gone)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM if `up` itself is killed (SIGKILL, OOM) first."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class Stack:
    """Child processes of `pisman up`, each leading its own process group, stopped in order."""

    def __init__(self, s: Settings, log_dir: Path) -> None:
        self.settings = s
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.broker: EmbeddedBroker | None = None
        self.embedded_pgdata: Path | None = None  # set when `up` started an embedded PostgreSQL
        self._spawning = False
        self._deferred_signal: int | None = None

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        """SIGTERM/SIGINT handler: stop, but never between starting a child and recording it."""
        if self._spawning:
            self._deferred_signal = signum
            return
        raise StopRequested(signum)

    def spawn(
        self, name: str, args: list[str], env: dict[str, str], *, log: bool = True
    ) -> subprocess.Popen[bytes]:
        """Start `python -m pisman <args>` with its output in var/logs/<name>.log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{name}.log", "ab") if log else None  # noqa: SIM115 (child keeps it)
        self._spawning = True
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "pisman", *args],
                env=env,
                cwd=PROJECT_ROOT,
                stdout=out,
                stderr=subprocess.STDOUT if log else None,
                # Its own group: a terminal's Ctrl-C reaches only `up`, which stops children in
                # order, and stopping a child's group also stops anything it started.
                process_group=0,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
            self.children[name] = proc
        finally:
            self._spawning = False
            if out is not None:
                out.close()  # the child holds its own copy
        if self._deferred_signal is not None:
            raise StopRequested(self._deferred_signal)
        return proc

    def check_alive(self) -> None:
        """Raise when a long-running child (or our broker) died."""
        for name, proc in self.children.items():
            if name in LONG_RUNNING and proc.poll() is not None:
                raise StackError(
                    f"{name} exited unexpectedly with status {proc.returncode}; "
                    f"see {self.log_dir / (name + '.log')}"
                )
        broker = self.broker.proc if self.broker else None
        if broker is not None and broker.poll() is not None:
            raise StackError(
                f"the broker exited unexpectedly with status {broker.returncode}; "
                f"see {self.broker.folder / 'mosquitto.log' if self.broker else ''}"
            )

    def wait_child(self, proc: subprocess.Popen[bytes]) -> int:
        """Wait for a one-shot child while watching the long-running ones."""
        while True:
            try:
                return proc.wait(0.5)
            except subprocess.TimeoutExpired:
                self.check_alive()

    def _stop_child(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the child's group, wait, SIGKILL what is left (the group too)."""
        if proc.poll() is None:
            _kill_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT_S.get(name, DEFAULT_STOP_TIMEOUT_S))
            except subprocess.TimeoutExpired:
                say(f"{name} did not stop within its time; killing it")
                _kill_group(proc.pid, signal.SIGKILL)
                proc.wait()
        # Grandchildren that outlived their parent.
        _kill_group(proc.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Stop every child in STOP_ORDER, then the broker, then an embedded PostgreSQL."""
        names = [n for n in STOP_ORDER if n in self.children]
        names += [n for n in self.children if n not in names]
        for name in names:
            self._stop_child(name, self.children[name])
        if self.broker:
            self.broker.stop()
        if self.embedded_pgdata is not None and stop_embedded_postgres(self.embedded_pgdata):
            say("stopped the embedded PostgreSQL")


HISTORY_SQL = """
SELECT EXISTS (SELECT 1 FROM weighing WHERE city_id = %s AND ts < now() - make_interval(days => %s))
"""


def _has_history(database_url: str, city_id: str, days: int) -> bool:
    """Whether readings older than `days - 1` days exist, i.e. an earlier backfill already ran."""
    with db.connect(database_url) as conn:
        row = conn.execute(HISTORY_SQL, (city_id, max(days - 1, 0))).fetchone()
    return bool(row and row[0])


def _ensure_admin(database_url: str, login_file: Path) -> tuple[str, str] | None:
    """Create an admin with a generated password when the database has no enabled admin.

    Returns (username, password) when one was made (printed once by the caller, written 0600 to
    login_file); None when an admin already exists.
    """
    with db.connect(database_url) as conn:
        if users.count_admins(conn) > 0:
            return None
        username = "admin"
        if users.get_user(conn, username) is not None:  # a disabled "admin": leave it alone
            username = f"admin-{secrets.token_hex(2)}"
        password = secrets.token_urlsafe(15)
        users.add_user(
            conn,
            username=username,
            password=password,
            role="admin",
            display_name="Admin (pisman up)",
        )
        conn.commit()
    login_file.parent.mkdir(parents=True, exist_ok=True)
    login_file.unlink(missing_ok=True)
    fd = os.open(login_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(f"username: {username}\npassword: {password}\n")
    return username, password


def wait_http(url: str, timeout: float, stack: Stack) -> None:
    """Wait until url answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stack.check_alive()
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise StackError(f"{url} did not answer within {timeout:.0f} s")


@dataclass(frozen=True)
class Broker:
    """Where the stack's MQTT broker listens and how ingest logs in to it."""

    host: str
    port: int
    ingest_password: str

    def url(self, credentials: str = "") -> str:
        return f"mqtt://{credentials}{self.host}:{self.port}"


def prepare_database(s: Settings, stack: Stack) -> str:
    """Choose the database, create it if missing and bring its schema up to date; its URL."""
    database_url = choose_database(s, stack)
    if db.ensure_database(database_url):
        say("created the database")
    applied = db.migrate(
        database_url,
        s.PISMAN_SQL_DIR,
        timezone=s.PISMAN_TIMEZONE,
        timescale=s.PISMAN_TIMESCALE,
        bin_retention_days=s.PISMAN_BIN_RETENTION_DAYS,
    )
    with db.connect(database_url) as conn:
        say(
            f"schema current ({len(applied)} migration(s) applied; storage: {db.storage_kind(conn)})"
        )
    return database_url


def load_city(database_url: str, city_file: Path) -> City:
    """Read the city file and store it (districts, sites, targets, fleet)."""
    from pisman import citydata

    city = citydata.read_city_file(city_file)
    with db.connect(database_url) as conn:
        say(citydata.load_city(conn, city))
    return city


def choose_broker(
    s: Settings, stack: Stack, database_url: str, state_file: Path, env: dict[str, str]
) -> Broker:
    """The configured broker (MQTT_URL), or our own Mosquitto (not started yet); the ingest
    account's password is kept in the state file so a configured broker's files stay valid."""
    state = _load_state(state_file)
    ingest_password = state.get("ingest_password") or secrets.token_urlsafe(18)
    if state.get("ingest_password") != ingest_password:
        _save_state(state_file, {**state, "ingest_password": ingest_password})
    with db.connect(database_url) as conn:
        devices.set_service_account(
            conn, username=INGEST_ACCOUNT, role="ingest", password=ingest_password
        )
    if "MQTT_URL" in s.model_fields_set:
        endpoint = s.mqtt
        say(
            f"broker: {endpoint.url()} (from MQTT_URL; load its password and ACL files with "
            "`pisman devices sync-broker`)"
        )
        return Broker(endpoint.host, endpoint.port, ingest_password)
    stack.broker = EmbeddedBroker(
        s.PISMAN_DATA_DIR / "mosquitto",
        s.PISMAN_UP_MQTT_PORT,
        tls_port=s.PISMAN_UP_MQTTS_PORT,
        tls_host=s.PISMAN_UP_MQTTS_HOST,
        cert_hosts=split_hosts(s.PISMAN_BROKER_CERT_HOSTS),
    )
    env["MOSQUITTO_PASSWORD_FILE"] = str(stack.broker.password_file)
    env["MOSQUITTO_ACL_FILE"] = str(stack.broker.acl_file)
    env["MOSQUITTO_PID_FILE"] = str(stack.broker.pid_file)
    return Broker("127.0.0.1", s.PISMAN_UP_MQTT_PORT, ingest_password)


def provision_devices(
    stack: Stack, city_file: Path, credentials: Path, sim_env: dict[str, str]
) -> None:
    """`pisman simulate provision` for the city's simulated devices and the gateway account."""
    say("provisioning simulated devices")
    provision = stack.spawn(
        "provision",
        [
            "simulate",
            "provision",
            "--city-file",
            str(city_file),
            "--credentials",
            str(credentials),
            "--gateway-user",
            GATEWAY_ACCOUNT,
        ],
        sim_env,
        log=False,
    )
    if stack.wait_child(provision) != 0:
        raise StackError("device provisioning failed (see above)")


def start_own_broker(s: Settings, stack: Stack, database_url: str, broker: Broker) -> None:
    """Write our Mosquitto's password and ACL files from the registry and start it."""
    if stack.broker is None:
        return
    with db.connect(database_url) as conn:
        devices.write_broker_files(
            conn, password_file=stack.broker.password_file, acl_file=stack.broker.acl_file
        )
    stack.broker.start()
    say(
        f"broker: started our own Mosquitto on 127.0.0.1:{broker.port} (devices authenticate; "
        "set MQTT_URL to use another broker)"
    )
    say(
        f"devices over TLS: mqtts://{s.PISMAN_UP_MQTTS_HOST}:{s.PISMAN_UP_MQTTS_PORT} "
        f"(trust {stack.broker.certs.ca_file}; PISMAN_UP_MQTTS_HOST=0.0.0.0 opens it)"
    )


def start_services(s: Settings, stack: Stack, env: dict[str, str], broker: Broker) -> None:
    """Start ingest, the API and the dashboard, and wait until the last two answer."""
    ingest_env = {
        **env,
        "MQTT_URL": broker.url(f"{INGEST_ACCOUNT}:{broker.ingest_password}@"),
        "INGEST_CLIENT_ID": INGEST_ACCOUNT,  # the broker names the session after the user
    }
    stack.spawn("ingest", ["ingest"], ingest_env)
    stack.spawn("api", ["api"], env)
    api_url = f"http://{s.API_HOST}:{s.API_PORT}"
    # No API key for the dashboard: each user's requests carry that user's login session.
    stack.spawn("dashboard", ["dashboard"], {**env, "API_URL": api_url})
    wait_http(f"{api_url}/healthz", 30, stack)
    dashboard_url = f"http://{s.DASHBOARD_HOST}:{s.DASHBOARD_PORT}/"
    wait_http(dashboard_url + "login", 60, stack)
    say(f"API:       {api_url}/docs   (log in: POST /v1/auth/login, or `pisman keys add`)")
    say(f"dashboard: {dashboard_url}")


def announce_login(first_login: tuple[str, str] | None, login_file: Path) -> None:
    """The first admin's password, printed once; otherwise where it was kept."""
    if first_login is not None:
        say(
            f"  masuk / log in as {first_login[0]}, password {first_login[1]}"
            f"  (shown once; kept 0600 in {login_file}; add people with `pisman users add`)"
        )
    else:
        say(f"  log in with your account (the first admin's password is in {login_file})")


def simulator_args(city_file: Path, credentials: Path, mode: str, seed: int) -> list[str]:
    """`pisman simulate run` through the gateway account, in the given mode."""
    return [
        "simulate",
        "run",
        "--city-file",
        str(city_file),
        "--credentials",
        str(credentials),
        "--mode",
        mode,
        "--gateway",
        "--seed",
        str(seed),
    ]


def backfill(
    stack: Stack,
    database_url: str,
    city_id: str,
    simulator: list[str],
    days: int,
    sim_env: dict[str, str],
) -> None:
    """Publish `days` of simulated history, unless an earlier run already stored it."""
    if days <= 0:
        return
    if _has_history(database_url, city_id, days):
        say(f"history for the last {days} day(s) is already stored; skipping the backfill")
        return
    say(f"backfilling {days} day(s) of simulated history through MQTT")
    child = stack.spawn("backfill", [*simulator, "--days", str(days)], sim_env, log=False)
    if stack.wait_child(child) != 0:
        raise StackError("backfill failed (see above)")
    # A bulk load leaves the planner's statistics behind (autovacuum catches up later, or never
    # where it is off): without them the rollups' row counts read as ~0 and the dashboard's
    # queries pick nested loops several times slower.
    say("ANALYZE: statistics for the query planner after the backfill")
    with db.connect(database_url, autocommit=True) as conn:
        conn.execute("ANALYZE")


def run_live(
    stack: Stack, simulator: list[str], sim_env: dict[str, str], duration: float | None
) -> None:
    """Start the real-time simulator and watch every child until the duration (or a signal)."""
    say("live: simulated devices publish in real time; press Ctrl-C to stop")
    stack.spawn("simulate", simulator, sim_env)
    deadline = time.monotonic() + duration if duration else None
    while deadline is None or time.monotonic() < deadline:
        stack.check_alive()
        time.sleep(0.5)
    say("duration reached; stopping")


def run_up(city_file: str | None, days: int, seed: int, duration: float | None) -> None:
    """Bring the stack up and keep it running until Ctrl-C (or duration); stop it in order.

    A StackError (or any other failure) still stops every child first; pisman.clierrors
    turns it into one line and exit status 1.
    """
    s = get_settings()
    var = s.PISMAN_DATA_DIR
    city_path = Path(city_file) if city_file else s.PISMAN_CITY_FILE
    credentials = var / "simulator-credentials.json"
    stack = Stack(s, var / "logs")
    env = dict(os.environ)
    # SIGTERM (service managers, `docker stop`, a background job) stops like Ctrl-C does.
    previous = {sig: signal.signal(sig, stack.on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        database_url = prepare_database(s, stack)
        env["DATABASE_URL"] = database_url
        city = load_city(database_url, city_path)
        env["PISMAN_CITY"] = city.city.id
        broker = choose_broker(s, stack, database_url, var / "up-state.json", env)
        sim_env = {**env, "MQTT_URL": broker.url()}
        provision_devices(stack, city_path, credentials, sim_env)
        start_own_broker(s, stack, database_url, broker)
        login_file = var / "dashboard-login.txt"
        first_login = _ensure_admin(database_url, login_file)
        if not s.DASHBOARD_SECRET_KEY:
            ensure_secret_file(var / "dashboard-secret")  # signs the dashboard's session cookie
        start_services(s, stack, env, broker)
        announce_login(first_login, login_file)
        backfill(
            stack,
            database_url,
            city.city.id,
            simulator_args(city_path, credentials, "backfill", seed),
            days,
            sim_env,
        )
        run_live(stack, simulator_args(city_path, credentials, "realtime", seed), sim_env, duration)
    except KeyboardInterrupt as exc:
        say(f"{exc if isinstance(exc, StopRequested) else 'SIGINT'} received; stopping")
    finally:
        # A second signal must not cut the ordered stop short (each step is bounded).
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        try:
            stack.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@click.command("up", help="run the whole stack with a simulated city (Ctrl-C stops it)")
@click.option("--city-file", default=None, help="city data file (default: PISMAN_CITY_FILE)")
@click.option("--days", type=int, default=30, help="days of history to backfill (0: none)")
@click.option("--seed", type=int, default=1, help="simulator seed")
@click.option("--duration", type=float, default=None, help="stop after this many seconds")
def cmd_up(city_file: str | None, days: int, seed: int, duration: float | None) -> None:
    """`pisman up`."""
    run_up(city_file, days, seed, duration)


def register(cli: click.Group) -> None:
    """Add the `up` subcommand."""
    cli.add_command(cmd_up)
