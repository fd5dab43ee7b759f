"""`pisman simulate provision|run`: simulated devices for a city file, publishing through MQTT."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from pisman.citydata import City
from pisman.settings import Settings, get_settings


class SimulateUsageError(Exception):
    """Bad simulator options; the CLI prints the message and exits 2."""


def _city(args: argparse.Namespace, s: Settings) -> City:
    from pisman.citydata import read_city_file

    return read_city_file(Path(args.city_file) if args.city_file else s.PISMAN_CITY_FILE)


def _credentials_path(args: argparse.Namespace, s: Settings, city_id: str) -> Path:
    return (
        Path(args.credentials)
        if args.credentials
        else s.PISMAN_DATA_DIR / f"simulator-credentials-{city_id}.json"
    )


def cmd_provision(args: argparse.Namespace) -> int:
    """Create the city's simulated devices and write their credentials."""
    from pisman import db, devices
    from simulators.provision import provision

    s = get_settings()
    city = _city(args, s)
    path = _credentials_path(args, s, city.city.id)
    with db.connect(s.DATABASE_URL) as conn:
        result = provision(conn, city, credentials_path=path, gateway_user=args.gateway_user)
        devices.sync_broker_if_configured(conn, s)
    print(result.city_summary)
    print(
        f"devices: {result.created} created, {result.reused} reused, {result.rotated} given a new password"
        + (f"; gateway account {result.gateway}" if result.gateway else "")
    )
    print(f"credentials written to {path} (mode 0600)")
    return 0


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


def cmd_run(args: argparse.Namespace) -> int:
    """Run the simulator and write its report."""
    from pisman.devices import ACK_KIND, device_topic
    from simulators.devices import city_devices
    from simulators.faults import FaultSpecError, parse_faults
    from simulators.provision import read_credentials
    from simulators.publisher import (
        GATEWAY_ACKS,
        Account,
        NullPublisher,
        Publisher,
        StoreAndForward,
    )
    from simulators.run import RunOptions, Simulator

    s = get_settings()
    city = _city(args, s)
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
    opts = RunOptions(
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
    devs = city_devices(city)
    publisher: Publisher
    if args.dry_run:
        publisher = NullPublisher()
    else:
        creds = read_credentials(_credentials_path(args, s, city.city.id))
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
            publisher.connect(
                [(account, [d.device_id for d in devs])], per_connection_inflight=2000
            )
        else:
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
    t = data["totals"]
    print(
        f"{args.mode}: {t['valid']} valid readings, {t['duplicates_sent']} duplicates, {t['invalid']} invalid "
        f"in {t['messages']} messages from {len(devs)} devices in {data['elapsed_s']} s; report: {report_path}"
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
    if args.wait_confirmed and t.get("pending"):
        print(
            f"pisman simulate: {t['pending']} readings still without a commit ack after"
            f" {args.wait_confirmed:.0f} s",
            file=sys.stderr,
        )
        return 1
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _run_guarded(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def wrapper(args: argparse.Namespace) -> int:
        from simulators.provision import CredentialsError
        from simulators.publisher import PublishError

        try:
            return int(func(args))
        except (SimulateUsageError, CredentialsError) as exc:
            print(f"pisman simulate: {exc}", file=sys.stderr)
            return 2
        except PublishError as exc:
            print(f"pisman simulate: {exc}", file=sys.stderr)
            return 1

    return wrapper


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add `simulate provision` and `simulate run`."""
    sim = sub.add_parser(
        "simulate", help="simulated devices publishing a city's readings over MQTT"
    )
    sim_sub = sim.add_subparsers(dest="simulate_command", metavar="ACTION")
    sim_sub.required = True
    p = sim_sub.add_parser(
        "provision", help="create the city's simulated devices and write their credentials"
    )
    p.add_argument("--city-file", default=None, help="city YAML (default: PISMAN_CITY_FILE)")
    p.add_argument(
        "--credentials",
        default=None,
        help="credentials JSON to write (default under PISMAN_DATA_DIR)",
    )
    p.add_argument("--gateway-user", default=None, help="also create this gateway service account")
    p.set_defaults(func=_run_guarded(cmd_provision))

    p = sim_sub.add_parser(
        "run", help="publish simulated readings (realtime, accelerated or backfill)"
    )
    p.add_argument("--city-file", default=None, help="city YAML (default: PISMAN_CITY_FILE)")
    p.add_argument("--credentials", default=None, help="credentials JSON from `simulate provision`")
    p.add_argument("--mode", choices=("realtime", "accelerated", "backfill"), default="realtime")
    p.add_argument(
        "--speed", type=float, default=60.0, help="accelerated: simulated seconds per second"
    )
    p.add_argument("--days", type=float, default=30.0, help="backfill: days of history")
    p.add_argument(
        "--end",
        default=None,
        help="backfill: end of history (ISO-8601 with offset; default now); "
        "realtime/accelerated: simulated start",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--faults",
        default="none",
        help="none | all | comma list of dup,reorder,offline,malformed,skew,noise,outlier",
    )
    p.add_argument(
        "--gateway",
        action="store_true",
        help="publish through the gateway account (thousands of devices)",
    )
    p.add_argument(
        "--batch", type=int, default=None, help="backfill: most readings per message (default 100)"
    )
    p.add_argument(
        "--bin-interval",
        type=int,
        default=None,
        help="seconds between bin readings (default: city file)",
    )
    p.add_argument("--report", default=None, help="write the JSON report here")
    p.add_argument(
        "--duration",
        type=float,
        default=None,
        help="realtime/accelerated: stop after this many seconds",
    )
    p.add_argument("--dry-run", action="store_true", help="generate and count without a broker")
    p.add_argument(
        "--no-commit-acks",
        action="store_true",
        help="legacy devices: forget a reading at the broker's PUBACK, never read commit acks",
    )
    p.add_argument(
        "--ack-timeout",
        type=float,
        default=30.0,
        help="resend a reading with no commit ack after this many seconds (default 30)",
    )
    p.add_argument(
        "--backlog",
        type=int,
        default=20_000,
        help="most unconfirmed readings a device holds; it waits while full (default 20000)",
    )
    p.add_argument(
        "--wait-confirmed",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="at the end, wait up to this long until every reading is confirmed; exit 1 if not",
    )
    p.add_argument(
        "--collection",
        choices=("threshold", "plan", "fixed"),
        default="threshold",
        help="who empties the depots: today's threshold rule (default), the daily collection "
        "plan (forecast + routes, needs the city file's fleet), or fixed daily rounds",
    )
    p.add_argument(
        "--plan-time-limit",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="--collection plan: solver seconds per daily plan (default 5)",
    )
    p.add_argument(
        "--plan-deterministic",
        action="store_true",
        help="--collection plan: greedy search to a local optimum, the same plan on any machine "
        "(slower) instead of guided search under the time limit",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--print-categories", action="store_true", help="print the per-day category totals"
    )
    p.set_defaults(func=_run_guarded(cmd_run))
