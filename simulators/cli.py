"""`pisman simulate provision|run`: simulated devices for a city file, publishing through MQTT."""

from __future__ import annotations

import json
import signal
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pisman.citydata import City
from pisman.clierrors import Choice, CommandFailed, Group, InputError, exit_codes
from pisman.settings import Settings, get_settings

if TYPE_CHECKING:
    from simulators.devices import SimDevice
    from simulators.publisher import Publisher
    from simulators.run import Mode, RunOptions, Simulator


class SimulateUsageError(InputError):
    """Bad simulator options: one line, exit status 2 (pisman.clierrors)."""


def _city(city_file: str | None, s: Settings) -> City:
    from pisman.citydata import read_city_file

    return read_city_file(Path(city_file) if city_file else s.PISMAN_CITY_FILE)


def _credentials_path(credentials: str | None, s: Settings, city_id: str) -> Path:
    return (
        Path(credentials)
        if credentials
        else s.PISMAN_DATA_DIR / f"simulator-credentials-{city_id}.json"
    )


def _simulator_errors() -> AbstractContextManager[None]:
    """A credentials file that does not fit is bad input; a broker that fails us is a failure."""
    from simulators.provision import CredentialsError
    from simulators.publisher import PublishError

    return exit_codes(input_errors=(CredentialsError,), failures=(PublishError,))


CITY_FILE = click.option("--city-file", default=None, help="city YAML (default: PISMAN_CITY_FILE)")


@click.group("simulate", cls=Group, help="simulated devices publishing a city's readings over MQTT")
def simulate_group() -> None:
    """`pisman simulate ACTION`."""


@simulate_group.command(
    "provision", help="create the city's simulated devices and write their credentials"
)
@CITY_FILE
@click.option(
    "--credentials",
    default=None,
    help="credentials JSON to write (default under PISMAN_DATA_DIR)",
)
@click.option("--gateway-user", default=None, help="also create this gateway service account")
def cmd_provision(city_file: str | None, credentials: str | None, gateway_user: str | None) -> None:
    """Create the city's simulated devices and write their credentials."""
    from pisman import db, devices
    from simulators.provision import provision

    s = get_settings()
    city = _city(city_file, s)
    path = _credentials_path(credentials, s, city.city.id)
    with _simulator_errors(), db.connect(s.DATABASE_URL) as conn:
        result = provision(conn, city, credentials_path=path, gateway_user=gateway_user)
        devices.sync_broker_if_configured(conn, s)
    print(result.city_summary)
    print(
        f"devices: {result.created} created, {result.reused} reused, {result.rotated} given a new password"
        + (f"; gateway account {result.gateway}" if result.gateway else "")
    )
    print(f"credentials written to {path} (mode 0600)")


def _parse_end(text: str | None) -> int | None:
    if not text:
        return None
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SimulateUsageError(f"--end {text!r} is not an ISO-8601 time") from None
    if dt.tzinfo is None:
        raise SimulateUsageError("--end needs a UTC offset, e.g. 2026-11-01T00:00:00+07:00")
    return int(dt.timestamp() * 1000)


@dataclass(frozen=True)
class RunArgs:
    """The options of `pisman simulate run` (see its --help)."""

    city_file: str | None
    credentials: str | None
    mode: Mode
    speed: float
    days: float
    end: str | None
    seed: int
    faults: str
    gateway: bool
    batch: int | None
    bin_interval: int | None
    report: str | None
    duration: float | None
    dry_run: bool
    no_commit_acks: bool
    ack_timeout: float
    backlog: int
    wait_confirmed: float
    collection: str
    plan_time_limit: float
    plan_deterministic: bool
    quiet: bool
    print_categories: bool


@simulate_group.command(
    "run", help="publish simulated readings (realtime, accelerated or backfill)"
)
@CITY_FILE
@click.option("--credentials", default=None, help="credentials JSON from `simulate provision`")
@click.option("--mode", type=Choice(["realtime", "accelerated", "backfill"]), default="realtime")
@click.option("--speed", type=float, default=60.0, help="accelerated: simulated seconds per second")
@click.option("--days", type=float, default=30.0, help="backfill: days of history")
@click.option(
    "--end",
    default=None,
    help="backfill: end of history (ISO-8601 with offset; default now); "
    "realtime/accelerated: simulated start",
)
@click.option("--seed", type=int, default=1)
@click.option(
    "--faults",
    default="none",
    help="none | all | comma list of dup,reorder,offline,malformed,skew,noise,outlier",
)
@click.option(
    "--gateway",
    is_flag=True,
    help="publish through the gateway account (thousands of devices)",
)
@click.option(
    "--batch", type=int, default=None, help="backfill: most readings per message (default 100)"
)
@click.option(
    "--bin-interval",
    type=int,
    default=None,
    help="seconds between bin readings (default: city file)",
)
@click.option("--report", default=None, help="write the JSON report here")
@click.option(
    "--duration",
    type=float,
    default=None,
    help="realtime/accelerated: stop after this many seconds",
)
@click.option("--dry-run", is_flag=True, help="generate and count without a broker")
@click.option(
    "--no-commit-acks",
    is_flag=True,
    help="legacy devices: forget a reading at the broker's PUBACK, never read commit acks",
)
@click.option(
    "--ack-timeout",
    type=float,
    default=30.0,
    help="resend a reading with no commit ack after this many seconds (default 30)",
)
@click.option(
    "--backlog",
    type=int,
    default=20_000,
    help="most unconfirmed readings a device holds; it waits while full (default 20000)",
)
@click.option(
    "--wait-confirmed",
    type=float,
    default=0.0,
    metavar="SECONDS",
    help="at the end, wait up to this long until every reading is confirmed; exit 1 if not",
)
@click.option(
    "--collection",
    type=Choice(["threshold", "plan", "fixed"]),
    default="threshold",
    help="who empties the depots: today's threshold rule (default), the daily collection "
    "plan (forecast + routes, needs the city file's fleet), or fixed daily rounds",
)
@click.option(
    "--plan-time-limit",
    type=float,
    default=5.0,
    metavar="SECONDS",
    help="--collection plan: solver seconds per daily plan (default 5)",
)
@click.option(
    "--plan-deterministic",
    is_flag=True,
    help="--collection plan: greedy search to a local optimum, the same plan on any machine "
    "(slower) instead of guided search under the time limit",
)
@click.option("--quiet", is_flag=True, help="no progress bar")
@click.option("--print-categories", is_flag=True, help="print the per-day category totals")
def cmd_run(**options: Any) -> None:
    """Run the simulator and write its report."""
    with _simulator_errors():
        run_simulator(RunArgs(**options))


def run_simulator(args: RunArgs) -> None:
    """Run the simulator and write its report; exit 1 when readings stay unconfirmed."""
    from simulators.devices import city_devices
    from simulators.run import Simulator

    s = get_settings()
    city = _city(args.city_file, s)
    opts = _run_options(args, city)
    devs = city_devices(city)
    publisher = _connected_publisher(args, s, city.city.id, devs)
    sim = Simulator(city, devs, publisher, opts)
    # `pisman up` stops the live simulator with SIGTERM: finish like Ctrl-C (statuses, report).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        report = sim.backfill() if args.mode == "backfill" else sim.live()
    finally:
        publisher.close()
    report_path = (
        Path(args.report)
        if args.report
        else s.PISMAN_DATA_DIR / f"simulate-report-{city.city.id}-{args.mode}.json"
    )
    report.write(report_path)
    data = report.to_dict()
    _print_summary(args, data, len(devs), report_path, sim)
    t = data["totals"]
    if args.wait_confirmed and t.get("pending"):
        raise CommandFailed(
            f"{t['pending']} readings still without a commit ack after {args.wait_confirmed:.0f} s"
        )


def _run_options(args: RunArgs, city: City) -> RunOptions:
    """The simulator's options, each checked against the city file (bad ones: exit 2)."""
    from simulators.faults import FaultSpecError, parse_faults
    from simulators.run import RunOptions

    if city.simulation is None:
        raise SimulateUsageError(f"city {city.city.id} has no simulation section")
    try:
        faults = parse_faults(args.faults)
    except FaultSpecError as exc:
        raise SimulateUsageError(str(exc)) from None
    if args.collection != "threshold" and city.fleet is None:
        raise SimulateUsageError(
            f"--collection {args.collection} needs a fleet section in the city file of {city.city.id}"
        )
    if not 0.1 <= args.plan_time_limit <= 600:
        raise SimulateUsageError("--plan-time-limit must be between 0.1 and 600 seconds")
    return RunOptions(
        mode=args.mode,
        seed=args.seed,
        faults=faults,
        days=args.days,
        end_ms=_parse_end(args.end),
        speed=args.speed,
        duration_s=args.duration,
        bin_interval_s=args.bin_interval,
        batch=args.batch,
        progress=not args.quiet,
        wait_confirmed_s=args.wait_confirmed,
        collection=args.collection,
        plan_time_limit_s=args.plan_time_limit,
        plan_deterministic=args.plan_deterministic,
    )


def _connected_publisher(
    args: RunArgs, s: Settings, city_id: str, devs: list[SimDevice]
) -> Publisher:
    """No broker for --dry-run; else one connection for the gateway account or one per device."""
    from pisman.devices import ACK_KIND, device_topic
    from simulators.provision import read_credentials
    from simulators.publisher import (
        GATEWAY_ACKS,
        Account,
        NullPublisher,
        Publisher,
        StoreAndForward,
    )

    if args.dry_run:
        return NullPublisher()
    creds = read_credentials(_credentials_path(args.credentials, s, city_id))
    endpoint = s.mqtt
    saf = (
        None
        if args.no_commit_acks
        else StoreAndForward(ack_timeout_s=args.ack_timeout, backlog_limit=args.backlog)
    )
    publisher = Publisher(endpoint.host, endpoint.port, store_and_forward=saf)
    if args.gateway:
        if creds.gateway is None:
            raise SimulateUsageError(
                "--gateway needs a gateway account: provision with --gateway-user NAME"
            )
        # One connection: the broker binds client ids to usernames, so a second connection
        # of the same account would take over the first one's session.
        account = Account(
            creds.gateway.username,
            creds.gateway.username,
            creds.gateway.password,
            ack_topic=GATEWAY_ACKS,
        )
        # The same number in flight as the two connections it had before.
        publisher.connect([(account, [d.device_id for d in devs])], per_connection_inflight=2000)
        return publisher
    missing = [d.device_id for d in devs if d.device_id not in creds.devices]
    if missing:
        raise SimulateUsageError(
            f"no credentials for {len(missing)} device(s) (e.g. {missing[0]}); re-run provision"
        )
    publisher.connect(
        [
            (
                Account(
                    d.device_id,  # the broker uses the username as client id anyway
                    d.device_id,
                    creds.devices[d.device_id],
                    will_topic=None,
                    ack_topic=device_topic(d.site_id, d.device_id, ACK_KIND),
                ),
                [d.device_id],
            )
            for d in devs
        ],
        per_connection_inflight=100,
    )
    return publisher


def _print_summary(
    args: RunArgs, data: dict[str, Any], devices: int, report_path: Path, sim: Simulator
) -> None:
    """What was sent, what was confirmed, what the trucks did; the categories if asked."""
    t = data["totals"]
    print(
        f"{args.mode}: {t['valid']} valid readings, {t['duplicates_sent']} duplicates, {t['invalid']} invalid "
        f"in {t['messages']} messages from {devices} devices in {data['elapsed_s']} s; report: {report_path}"
    )
    if "confirmed" in t:
        print(
            f"commit acks: {t['confirmed']} readings confirmed stored,"
            f" {t['confirmed_quarantined']} quarantined, {t['resent']} resent, {t['pending']} pending"
        )
    if args.collection != "threshold":
        c = sim.sim.collection.summary()
        print(
            f"collection {c['mode']}: {c['trips']} truck trips, {c['truck_km']} truck-km, "
            f"{c['collected_t']} t ({c['t_per_trip']} t a trip), {c['overflow_hours']} overflow-hours, "
            f"{c['arrivals_outside_hours']} landfill arrivals outside its hours"
        )
    if args.print_categories:
        print(json.dumps(data["categories_kg_by_local_day"], indent=1))


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def register(cli: click.Group) -> None:
    """Add `simulate provision` and `simulate run`."""
    cli.add_command(simulate_group)
