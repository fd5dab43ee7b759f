"""The `pisman` command: one entry point with a subcommand per job."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pisman import __version__
from pisman.backup import BackupError, BackupFailed
from pisman.citydata import CityFileError
from pisman.db import DatabaseUnavailable, MigrationError
from pisman.devices import RegistryError
from pisman.settings import Settings, SettingsError, get_settings
from pisman.users import UserError

# Each component adds its own subcommands: module.register(subparsers).
COMPONENT_CLIS = ("ingest.cli", "api.cli", "dashboard.cli", "simulators.cli", "pisman.stack")


class UsageError(Exception):
    """Bad input on the command line; exit status 2 with the message."""


def _settings() -> Settings:
    return get_settings()


def cmd_migrate(args: argparse.Namespace) -> int:
    """Apply pending migrations."""
    from pisman import db

    s = _settings()
    if db.ensure_database(s.DATABASE_URL):
        print(f"created database {db.redact(s.DATABASE_URL)}")
    applied = db.migrate(
        s.DATABASE_URL,
        s.PISMAN_SQL_DIR,
        timezone=s.PISMAN_TIMEZONE,
        timescale=s.PISMAN_TIMESCALE,
        bin_retention_days=s.PISMAN_BIN_RETENTION_DAYS,
        on_progress=print,
    )
    with db.connect(s.DATABASE_URL) as conn:
        kind = db.storage_kind(conn)
    print(f"{len(applied)} migration(s) applied; schema is current (storage: {kind})")
    return 0


def cmd_city_load(args: argparse.Namespace) -> int:
    """Load (or update) a city from its data file."""
    from pisman import citydata, db

    s = _settings()
    path = Path(args.file) if args.file else s.PISMAN_CITY_FILE
    city = citydata.read_city_file(path)
    with db.connect(s.DATABASE_URL) as conn:
        summary = citydata.load_city(conn, city)
    print(summary)
    return 0


def cmd_devices_add(args: argparse.Namespace) -> int:
    """Provision a device and print its credentials once."""
    from pisman import db, devices

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        device, password = devices.add_device(
            conn,
            device_id=args.device_id,
            site_id=args.site,
            kind=args.kind,
            reporting_interval_s=args.interval,
        )
        devices.sync_broker_if_configured(conn, s)
    print(
        f"device {device.device_id} ({device.kind}) at site {device.site_id}, city {device.city_id}"
    )
    print(f"  MQTT username: {device.device_id}")
    print(f"  MQTT password: {password}    (shown once; only a hash is stored)")
    print(
        f"  publish to:    {devices.device_topic(device.site_id, device.device_id, '<weighing|bin|status>')}"
    )
    return 0


def cmd_devices_list(args: argparse.Namespace) -> int:
    """List devices."""
    from pisman import db, devices

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        rows = devices.list_devices(conn, city_id=args.city, site_id=args.site)
    print(f"{'device':<28} {'kind':<15} {'site':<28} {'city':<12} interval  active")
    for d in rows:
        print(
            f"{d.device_id:<28} {d.kind:<15} {d.site_id:<28} {d.city_id:<12} {d.reporting_interval_s:>7}s  {d.active}"
        )
    print(f"{len(rows)} device(s)")
    return 0


def cmd_devices_rotate(args: argparse.Namespace) -> int:
    """Give a device a new password."""
    from pisman import db, devices

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        password = devices.rotate_password(conn, device_id=args.device_id)
        devices.sync_broker_if_configured(conn, s)
    print(f"new MQTT password for {args.device_id}: {password}    (shown once)")
    return 0


def cmd_devices_set_active(args: argparse.Namespace) -> int:
    """Deactivate a device (it can no longer connect) or activate it again."""
    from pisman import db, devices

    s = _settings()
    active = args.devices_command == "activate"
    with db.connect(s.DATABASE_URL) as conn:
        device = devices.set_active(conn, device_id=args.device_id, active=active)
        conn.commit()  # the broker files are written from what is committed
        broker = devices.sync_broker_if_configured(conn, s)
    if active:
        print(f"device {device.device_id} activated: it may connect and its readings are stored")
    else:
        print(
            f"device {device.device_id} deactivated: it can no longer connect, and readings still"
            " arriving on its topics are quarantined"
        )
    print(broker)
    return 0


def cmd_devices_sync_broker(args: argparse.Namespace) -> int:
    """Regenerate the broker's password and ACL files and reload it."""
    from pisman import db, devices

    s = _settings()
    password_file = Path(args.password_file) if args.password_file else s.MOSQUITTO_PASSWORD_FILE
    acl_file = Path(args.acl_file) if args.acl_file else s.MOSQUITTO_ACL_FILE
    if password_file is None or acl_file is None:
        raise UsageError(
            "give --password-file and --acl-file (or set MOSQUITTO_PASSWORD_FILE and MOSQUITTO_ACL_FILE)"
        )
    with db.connect(s.DATABASE_URL) as conn:
        if args.with_ingest_account:
            endpoint = s.mqtt
            if not endpoint.username or not endpoint.password:
                raise UsageError(
                    "--with-ingest-account needs MQTT_URL with the ingest user and password"
                )
            devices.set_service_account(
                conn, username=endpoint.username, role="ingest", password=endpoint.password
            )
        signalled = devices.write_broker_files(
            conn, password_file=password_file, acl_file=acl_file, pid_file=s.MOSQUITTO_PID_FILE
        )
    print(f"wrote {password_file} and {acl_file}" + ("; broker reloaded" if signalled else ""))
    if args.tls_dir:
        from pisman.certs import ensure_broker_certificates, split_hosts

        made = ensure_broker_certificates(
            Path(args.tls_dir), split_hosts(s.PISMAN_BROKER_CERT_HOSTS)
        )
        print(f"made {', '.join(made)}" if made else f"TLS files in {args.tls_dir} kept")
    return 0


def _read_password(args: argparse.Namespace) -> str:
    """The new password: one line of stdin (--password-stdin), or typed twice at a prompt."""
    import getpass

    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError("no terminal to ask the password on: pipe it with --password-stdin")
    first = getpass.getpass("Kata sandi / password: ")
    second = getpass.getpass("Ulangi kata sandi / repeat password: ")
    if first != second:
        raise UsageError("the two passwords differ; nothing was changed")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:
    """Create a user account (the password is asked for, never given as an argument)."""
    from pisman import db, users

    s = _settings()
    password = _read_password(args)
    problem = users.password_problem(password, args.username)
    if problem:  # before connecting: a weak password never reaches the database
        raise UserError(
            f"password refused: {problem} (at least {users.MIN_PASSWORD_LENGTH} characters,"
            " not a common one, not containing the username)"
        )
    with db.connect(s.DATABASE_URL) as conn:
        user = users.add_user(
            conn,
            username=args.username,
            password=password,
            role=args.role,
            cities=args.city or (),
            display_name=args.name,
        )
    cities = ", ".join(user.cities) if user.cities else "every city"
    print(f"user {user.username} ({user.role.value}; {cities}) created")
    return 0


def cmd_users_list(args: argparse.Namespace) -> int:
    """List user accounts (never their passwords)."""
    from pisman import db, users

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        rows = users.list_users(conn)
    print(f"{'username':<20} {'role':<8} {'cities':<20} {'state':<22} {'last login':<17} name")
    for u in rows:
        state = "disabled" if u.disabled else "active"
        if u.locked_until:
            state = "locked to " + u.locked_until.strftime("%Y-%m-%d %H:%M")
        last = u.last_login_at.strftime("%Y-%m-%d %H:%M") if u.last_login_at else "never"
        cities = ",".join(u.cities) or "*"
        print(
            f"{u.username:<20} {u.role.value:<8} {cities:<20} {state:<22} {last:<17} {u.display_name}"
        )
    print(f"{len(rows)} user(s)")
    return 0


def cmd_users_set_disabled(args: argparse.Namespace) -> int:
    """Disable an account (its sessions end at once) or enable it again."""
    from pisman import db, users

    s = _settings()
    disabled = args.users_command == "disable"
    with db.connect(s.DATABASE_URL) as conn:
        users.set_disabled(conn, username=args.username, disabled=disabled)
    if disabled:
        print(f"user {args.username} disabled: cannot log in; open sessions ended")
    else:
        print(f"user {args.username} enabled (lockout cleared)")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """Back up the database (DATABASE_URL) into one pg_dump custom-format file."""
    from pisman import backup

    s = _settings()
    result = backup.backup(
        s.DATABASE_URL,
        Path(args.output),
        pg_bin=Path(args.pg_bin) if args.pg_bin else None,
        on_progress=_progress,
    )
    ts = f", TimescaleDB {result.timescaledb_version}" if result.timescaledb_version else ""
    print(
        f"backup {result.path}: {backup.human_bytes(result.size_bytes)}, {result.tables} tables"
        f" (storage: {result.storage}{ts}), {result.seconds:.1f} s"
    )
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """Restore a backup into a new (or empty) database."""
    from pisman import backup, db

    s = _settings()
    target = _target_url(s.DATABASE_URL, args.database)
    result = backup.restore(
        Path(args.input),
        target,
        drop_existing=args.drop_existing,
        pg_bin=Path(args.pg_bin) if args.pg_bin else None,
        on_progress=_progress,
    )
    current = max((m.version for m in db.discover_migrations(s.PISMAN_SQL_DIR)), default=None)
    ts = f", TimescaleDB {result.timescaledb_version}" if result.timescaledb_version else ""
    print(
        f"restored {args.input} into {db.redact(result.url)}: {result.tables} tables{ts},"
        f" {result.seconds:.1f} s; schema at migration {result.schema_version}"
        f" (this release: {current})"
    )
    if result.schema_version == current:
        print("next: point DATABASE_URL at it; `pisman migrate` has nothing to apply")
    else:
        print(
            "next: point DATABASE_URL at it and serve it with the release it was backed up from"
            " (a rollback), or run this release's `pisman migrate` on it (an upgrade)"
        )
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    """TimescaleDB background jobs and how their runs went; exit 1 when one is failing."""
    from pisman import db, jobs

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        listed = jobs.list_jobs(conn)
    if listed is None:
        print("not applicable: plain PostgreSQL has no TimescaleDB background jobs")
        return 0
    print(
        f"{'job':>5}  {'proc':<58} {'hypertable':<24} {'last run':<8} {'last success':<20}"
        f" {'fails':>5} {'in a row':>8}  next start"
    )
    for j in listed:
        success = (
            j.last_successful_finish.strftime("%Y-%m-%d %H:%M")
            if j.last_successful_finish
            else "never"
        )
        nxt = j.next_start.strftime("%Y-%m-%d %H:%M") if j.next_start else "-"
        if not j.scheduled:
            nxt = "paused"
        elif j.overdue:
            nxt += " OVERDUE"
        print(
            f"{j.job_id:>5}  {j.proc:<58} {j.hypertable or '-':<24} {j.last_run_status or '-':<8}"
            f" {success:<20} {j.total_failures:>5} {j.consecutive_failures:>8}  {nxt}"
        )
        if j.failing and j.last_error:
            print(f"       last error: {j.last_error}")
    failing = [j for j in listed if j.failing]
    overdue = [j for j in listed if j.overdue]
    if failing or overdue:
        print(
            f"{len(listed)} jobs: {len(failing)} FAILING, {len(overdue)} OVERDUE (due over an hour"
            " ago, not started): see docs/operations.md, 'TimescaleDB jobs'",
            file=sys.stderr,
        )
        return 1
    print(f"{len(listed)} jobs, none failing or overdue")
    return 0


def _target_url(base_url: str, database: str) -> str:
    """--database: a full URL, or a database name on DATABASE_URL's server."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if "://" in database or "=" in database:
        return database
    if not database or "/" in database or len(database) > 63:
        raise UsageError(f"--database {database[:80]!r}: give a database name or a URL")
    params = {k: str(v) for k, v in conninfo_to_dict(base_url).items() if v is not None}
    params["dbname"] = database
    return make_conninfo("", **params)


def _progress(message: str) -> None:
    """Progress of long work, on stderr so stdout stays the result."""
    print(message, file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors with exit status 2 and one line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    """The full command-line parser."""
    parser = _Parser(prog="pisman", description="Kang PisMan tracker: reduce, separate, utilize.")
    parser.add_argument("--version", action="version", version=f"pisman {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("migrate", help="create or update the database schema")
    p.set_defaults(func=cmd_migrate)

    city = sub.add_parser("city", help="city data (districts, sites, targets)")
    city_sub = city.add_subparsers(dest="city_command", metavar="ACTION", parser_class=_Parser)
    city_sub.required = True
    p = city_sub.add_parser("load", help="load or update a city from its data file")
    p.add_argument("file", nargs="?", help="city YAML file (default: PISMAN_CITY_FILE)")
    p.set_defaults(func=cmd_city_load)

    dev = sub.add_parser("devices", help="provision and list devices")
    dev_sub = dev.add_subparsers(dest="devices_command", metavar="ACTION", parser_class=_Parser)
    dev_sub.required = True
    p = dev_sub.add_parser("add", help="provision a device; prints its password once")
    p.add_argument("device_id")
    p.add_argument("--site", required=True, help="site id where the device stands")
    p.add_argument("--kind", required=True, help="weighbridge | platform_scale | bin_sensor")
    p.add_argument("--interval", type=int, default=None, help="reporting interval in seconds")
    p.set_defaults(func=cmd_devices_add)
    p = dev_sub.add_parser("list", help="list devices")
    p.add_argument("--city", default=None)
    p.add_argument("--site", default=None)
    p.set_defaults(func=cmd_devices_list)
    p = dev_sub.add_parser("rotate", help="give a device a new password")
    p.add_argument("device_id")
    p.set_defaults(func=cmd_devices_rotate)
    p = dev_sub.add_parser(
        "deactivate",
        help="take a device out of service: it can no longer connect; its readings are quarantined",
    )
    p.add_argument("device_id")
    p.set_defaults(func=cmd_devices_set_active)
    p = dev_sub.add_parser("activate", help="put a deactivated device back in service")
    p.add_argument("device_id")
    p.set_defaults(func=cmd_devices_set_active)
    p = dev_sub.add_parser("sync-broker", help="regenerate Mosquitto password and ACL files")
    p.add_argument("--password-file", default=None)
    p.add_argument("--acl-file", default=None)
    p.add_argument(
        "--with-ingest-account",
        action="store_true",
        help="first create/update the ingest service account from MQTT_URL's user and password",
    )
    p.add_argument(
        "--tls-dir",
        default=None,
        help="also make the broker's CA and server certificate there if missing"
        " (valid for PISMAN_BROKER_CERT_HOSTS, localhost and 127.0.0.1)",
    )
    p.set_defaults(func=cmd_devices_sync_broker)

    usr = sub.add_parser("users", help="dashboard/API user accounts: add, list, disable, enable")
    usr_sub = usr.add_subparsers(dest="users_command", metavar="ACTION", parser_class=_Parser)
    usr_sub.required = True
    p = usr_sub.add_parser("add", help="create a user; the password is asked twice")
    p.add_argument("username")
    p.add_argument("--role", required=True, choices=["viewer", "planner", "admin"])
    p.add_argument(
        "--city",
        action="append",
        default=None,
        metavar="CITY",
        help="limit the user to this city (repeat for several; default: every city)",
    )
    p.add_argument("--name", default=None, help="display name (default: the username)")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of stdin"
    )
    p.set_defaults(func=cmd_users_add)
    p = usr_sub.add_parser("list", help="list users")
    p.set_defaults(func=cmd_users_list)
    p = usr_sub.add_parser("disable", help="disable a user: no login, open sessions end")
    p.add_argument("username")
    p.set_defaults(func=cmd_users_set_disabled)
    p = usr_sub.add_parser("enable", help="enable a user again (clears a lockout)")
    p.add_argument("username")
    p.set_defaults(func=cmd_users_set_disabled)

    p = sub.add_parser(
        "backup", help="back up the database (pg_dump custom format; TimescaleDB included)"
    )
    p.add_argument("--output", "-o", required=True, metavar="FILE", help="backup file to write")
    p.add_argument("--pg-bin", default=None, metavar="DIR", help="folder of pg_dump/pg_restore")
    p.set_defaults(func=cmd_backup)
    p = sub.add_parser("restore", help="restore a backup into a new or empty database")
    p.add_argument("--input", "-i", required=True, metavar="FILE", help="backup file to read")
    p.add_argument(
        "--database",
        "-d",
        required=True,
        metavar="NAME|URL",
        help="target database: a name on DATABASE_URL's server, or a URL (created if missing)",
    )
    p.add_argument(
        "--drop-existing",
        action="store_true",
        help="drop the target database first if it exists (everything in it is lost)",
    )
    p.add_argument("--pg-bin", default=None, metavar="DIR", help="folder of pg_dump/pg_restore")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser(
        "jobs", help="TimescaleDB background jobs (exit 1 when one is failing or overdue)"
    )
    p.set_defaults(func=cmd_jobs)

    for module_name in COMPONENT_CLIS:
        module = importlib.import_module(module_name)
        register: Callable[[argparse._SubParsersAction], None] = module.register  # type: ignore[type-arg,unused-ignore]
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; errors become one line on stderr and a non-zero status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        get_settings()
        return int(args.func(args) or 0)
    except SettingsError as exc:
        print(f"pisman: {exc}", file=sys.stderr)
        return 2
    except (UsageError, RegistryError, CityFileError, BackupError, UserError) as exc:
        print(f"pisman: {exc}", file=sys.stderr)
        return 2
    except (DatabaseUnavailable, MigrationError, BackupFailed) as exc:
        print(f"pisman: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pisman: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
