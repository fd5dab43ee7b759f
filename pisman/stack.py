"""`pisman up`: the whole stack with a simulated city, on configured or embedded servers."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from pisman import db, devices
from pisman.embedded import EmbeddedBroker, EmbeddedError, start_embedded_postgres
from pisman.settings import PROJECT_ROOT, Settings, get_settings

INGEST_ACCOUNT = "pisman-ingest"
GATEWAY_ACCOUNT = "pisman-sim-gateway"


class StackError(Exception):
    """`pisman up` cannot go on; str() says why."""


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


def choose_database(s: Settings) -> str:
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
    try:
        return start_embedded_postgres(s.PISMAN_DATA_DIR / "pgdata")
    except EmbeddedError as exc:
        raise StackError(str(exc)) from None
    except Exception as exc:  # the embedded server package reports many kinds of failure
        raise StackError(f"embedded PostgreSQL failed to start: {exc}") from None


class Stack:
    """Child processes of `pisman up`, stopped together."""

    def __init__(self, s: Settings, log_dir: Path) -> None:
        self.settings = s
        self.log_dir = log_dir
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.broker: EmbeddedBroker | None = None

    def spawn(
        self, name: str, args: list[str], env: dict[str, str], *, log: bool = True
    ) -> subprocess.Popen[bytes]:
        """Start `python -m pisman <args>` with its output in var/logs/<name>.log."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        out = open(self.log_dir / f"{name}.log", "ab") if log else None  # noqa: SIM115 (child keeps it)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pisman", *args],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT if log else None,
        )
        self.children[name] = proc
        return proc

    def check_alive(self) -> None:
        """Raise when a long-running child died."""
        for name, proc in self.children.items():
            if name in ("ingest", "api", "dashboard") and proc.poll() is not None:
                raise StackError(
                    f"{name} exited with status {proc.returncode}; see {self.log_dir / (name + '.log')}"
                )

    def stop(self) -> None:
        """Stop every child, then the broker."""
        for proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.children.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.broker:
            self.broker.stop()


HISTORY_SQL = """
SELECT EXISTS (SELECT 1 FROM weighing WHERE city_id = %s AND ts < now() - make_interval(days => %s))
"""


def _has_history(database_url: str, city_id: str, days: int) -> bool:
    """Whether readings older than `days - 1` days exist, i.e. an earlier backfill already ran."""
    with db.connect(database_url) as conn:
        row = conn.execute(HISTORY_SQL, (city_id, max(days - 1, 0))).fetchone()
    return bool(row and row[0])


def _key_is_current(conn: psycopg.Connection, key: str) -> bool:
    """Whether a key remembered from an earlier `up` still exists, unrevoked, in this database."""
    from api import keys as api_keys

    row = conn.execute(
        "SELECT secret_hash FROM api_key WHERE key_id = %s AND revoked_at IS NULL",
        (api_keys.split_key(key),),
    ).fetchone()
    return row is not None and row[0] == api_keys.hash_secret(key)


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


def run_up(args: argparse.Namespace) -> int:
    """Bring the stack up and keep it running until Ctrl-C (or --duration)."""
    s = get_settings()
    var = s.PISMAN_DATA_DIR
    state_file = var / "up-state.json"
    state = _load_state(state_file)
    city_file = Path(args.city_file) if args.city_file else s.PISMAN_CITY_FILE
    stack = Stack(s, var / "logs")
    env = dict(os.environ)
    try:
        database_url = choose_database(s)
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
        env["DATABASE_URL"] = database_url

        from pisman import citydata

        city = citydata.read_city_file(city_file)
        with db.connect(database_url) as conn:
            say(citydata.load_city(conn, city))
        env["PISMAN_CITY"] = city.city.id

        # Broker: the configured one, or our own authenticated Mosquitto.
        ingest_password = state.get("ingest_password") or secrets.token_urlsafe(18)
        state["ingest_password"] = ingest_password
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
            broker_host, broker_port = endpoint.host, endpoint.port
        else:
            stack.broker = EmbeddedBroker(var / "mosquitto", s.PISMAN_UP_MQTT_PORT)
            broker_host, broker_port = "127.0.0.1", s.PISMAN_UP_MQTT_PORT
            env["MOSQUITTO_PASSWORD_FILE"] = str(stack.broker.password_file)
            env["MOSQUITTO_ACL_FILE"] = str(stack.broker.acl_file)
            env["MOSQUITTO_PID_FILE"] = str(stack.broker.pid_file)
        sim_env = {**env, "MQTT_URL": f"mqtt://{broker_host}:{broker_port}"}

        credentials = var / "simulator-credentials.json"
        say("provisioning simulated devices")
        if (
            stack.spawn(
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
            ).wait()
            != 0
        ):
            raise StackError("device provisioning failed (see above)")
        if stack.broker:
            with db.connect(database_url) as conn:
                devices.write_broker_files(
                    conn, password_file=stack.broker.password_file, acl_file=stack.broker.acl_file
                )
            stack.broker.start()
            say(
                f"broker: started our own Mosquitto on 127.0.0.1:{broker_port} (devices authenticate; "
                "set MQTT_URL to use another broker)"
            )

        key = state.get("dashboard_api_key")
        from api import keys as api_keys

        with db.connect(database_url) as conn:
            if not key or not _key_is_current(conn, key):
                key = api_keys.create_key(conn, role="planner", name="dashboard (pisman up)")
                conn.commit()
        state["dashboard_api_key"] = key
        _save_state(state_file, state)

        ingest_env = {
            **env,
            "MQTT_URL": f"mqtt://{INGEST_ACCOUNT}:{ingest_password}@{broker_host}:{broker_port}",
        }
        stack.spawn("ingest", ["ingest"], ingest_env)
        stack.spawn("api", ["api"], env)
        api_url = f"http://{s.API_HOST}:{s.API_PORT}"
        stack.spawn("dashboard", ["dashboard"], {**env, "API_URL": api_url, "API_KEY": key})
        wait_http(f"{api_url}/healthz", 30, stack)
        dashboard_url = f"http://{s.DASHBOARD_HOST}:{s.DASHBOARD_PORT}/"
        wait_http(dashboard_url, 60, stack)
        say(f"API:       {api_url}/docs   (key for the dashboard in {state_file})")
        say(f"dashboard: {dashboard_url}")

        if args.days > 0 and _has_history(database_url, city.city.id, args.days):
            say(f"history for the last {args.days} day(s) is already stored; skipping the backfill")
        elif args.days > 0:
            say(f"backfilling {args.days} day(s) of simulated history through MQTT")
            code = stack.spawn(
                "backfill",
                [
                    "simulate",
                    "run",
                    "--city-file",
                    str(city_file),
                    "--credentials",
                    str(credentials),
                    "--mode",
                    "backfill",
                    "--days",
                    str(args.days),
                    "--gateway",
                    "--seed",
                    str(args.seed),
                ],
                sim_env,
                log=False,
            ).wait()
            if code != 0:
                raise StackError("backfill failed (see above)")
        say("live: simulated devices publish in real time; press Ctrl-C to stop")
        stack.spawn(
            "simulate",
            [
                "simulate",
                "run",
                "--city-file",
                str(city_file),
                "--credentials",
                str(credentials),
                "--mode",
                "realtime",
                "--gateway",
                "--seed",
                str(args.seed),
            ],
            sim_env,
        )
        deadline = time.monotonic() + args.duration if args.duration else None
        while deadline is None or time.monotonic() < deadline:
            stack.check_alive()
            time.sleep(0.5)
        say("duration reached; stopping")
        return 0
    except KeyboardInterrupt:
        say("stopping")
        return 0
    except (StackError, EmbeddedError) as exc:
        print(f"pisman up: {exc}", file=sys.stderr)
        return 1
    finally:
        stack.stop()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add the `up` subcommand."""
    p = sub.add_parser("up", help="run the whole stack with a simulated city (Ctrl-C stops it)")
    p.add_argument("--city-file", default=None, help="city data file (default: PISMAN_CITY_FILE)")
    p.add_argument("--days", type=int, default=30, help="days of history to backfill (0: none)")
    p.add_argument("--seed", type=int, default=1, help="simulator seed")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    p.set_defaults(func=run_up)
