"""The `pisman` command: one entry point with a subcommand per job (Click).

The core's own commands are here; each component adds its own with `register(group)` (found
by module name in COMPONENT_CLIS, so the core imports no component). Errors become exit
statuses in one place, `pisman.clierrors.run`.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from pisman import __version__
from pisman.clierrors import Choice, CommandFailed, Group, InputError, run
from pisman.domain import Role
from pisman.settings import Settings, get_settings
from pisman.users import UserError

# Each component adds its own subcommands: module.register(group).
COMPONENT_CLIS = ("ingest.cli", "api.cli", "dashboard.cli", "simulators.cli", "pisman.stack")


def _settings() -> Settings:
    return get_settings()


@click.command("migrate", help="create or update the database schema")
def cmd_migrate() -> None:
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


@click.group("city", cls=Group, help="city data (districts, sites, targets)")
def city_group() -> None:
    """`pisman city ACTION`."""


@city_group.command(
    "load",
    short_help="load or update a city from its data file",
    help="load or update a city from its data file\n\nFILE: city YAML file (default: PISMAN_CITY_FILE)",
)
@click.argument("file", required=False)
def cmd_city_load(file: str | None) -> None:
    """Load (or update) a city from its data file."""
    from pisman import citydata, db

    s = _settings()
    path = Path(file) if file else s.PISMAN_CITY_FILE
    city = citydata.read_city_file(path)
    with db.connect(s.DATABASE_URL) as conn:
        summary = citydata.load_city(conn, city)
    print(summary)


@click.group("devices", cls=Group, help="provision and list devices")
def devices_group() -> None:
    """`pisman devices ACTION`."""


@devices_group.command("add", help="provision a device; prints its password once")
@click.argument("device_id")
@click.option("--site", required=True, help="site id where the device stands")
@click.option("--kind", required=True, help="weighbridge | platform_scale | bin_sensor")
@click.option("--interval", type=int, default=None, help="reporting interval in seconds")
def cmd_devices_add(device_id: str, site: str, kind: str, interval: int | None) -> None:
    """Provision a device and print its credentials once."""
    from pisman import db, devices

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        device, password = devices.add_device(
            conn,
            device_id=device_id,
            site_id=site,
            kind=kind,
            reporting_interval_s=interval,
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


@devices_group.command("list", help="list devices")
@click.option("--city", default=None)
@click.option("--site", default=None)
def cmd_devices_list(city: str | None, site: str | None) -> None:
    """List devices."""
    from pisman import db, devices

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        rows = devices.list_devices(conn, city_id=city, site_id=site)
    print(f"{'device':<28} {'kind':<15} {'site':<28} {'city':<12} interval  active")
    for d in rows:
        print(
            f"{d.device_id:<28} {d.kind:<15} {d.site_id:<28} {d.city_id:<12} {d.reporting_interval_s:>7}s  {d.active}"
        )
    print(f"{len(rows)} device(s)")


@devices_group.command("rotate", help="give a device a new password")
@click.argument("device_id")
def cmd_devices_rotate(device_id: str) -> None:
    """Give a device a new password."""
    from pisman import db, devices

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        password = devices.rotate_password(conn, device_id=device_id)
        devices.sync_broker_if_configured(conn, s)
    print(f"new MQTT password for {device_id}: {password}    (shown once)")


@devices_group.command(
    "deactivate",
    help="take a device out of service: it can no longer connect; its readings are quarantined",
)
@click.argument("device_id")
def cmd_devices_deactivate(device_id: str) -> None:
    """Take a device out of service."""
    _set_active(device_id, active=False)


@devices_group.command("activate", help="put a deactivated device back in service")
@click.argument("device_id")
def cmd_devices_activate(device_id: str) -> None:
    """Put a deactivated device back in service."""
    _set_active(device_id, active=True)


def _set_active(device_id: str, *, active: bool) -> None:
    """Deactivate a device (it can no longer connect) or activate it again."""
    from pisman import db, devices

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        device = devices.set_active(conn, device_id=device_id, active=active)
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


@devices_group.command("sync-broker", help="regenerate Mosquitto password and ACL files")
@click.option("--password-file", default=None)
@click.option("--acl-file", default=None)
@click.option(
    "--with-ingest-account",
    is_flag=True,
    help="first create/update the ingest service account from MQTT_URL's user and password",
)
@click.option(
    "--tls-dir",
    default=None,
    help="also make the broker's CA and server certificate there if missing"
    " (valid for PISMAN_BROKER_CERT_HOSTS, localhost and 127.0.0.1)",
)
def cmd_devices_sync_broker(
    password_file: str | None, acl_file: str | None, with_ingest_account: bool, tls_dir: str | None
) -> None:
    """Regenerate the broker's password and ACL files and reload it."""
    from pisman import db, devices

    s = _settings()
    passwords = Path(password_file) if password_file else s.MOSQUITTO_PASSWORD_FILE
    acl = Path(acl_file) if acl_file else s.MOSQUITTO_ACL_FILE
    if passwords is None or acl is None:
        raise InputError(
            "give --password-file and --acl-file (or set MOSQUITTO_PASSWORD_FILE and MOSQUITTO_ACL_FILE)"
        )
    with db.connect(s.DATABASE_URL) as conn:
        if with_ingest_account:
            endpoint = s.mqtt
            if not endpoint.username or not endpoint.password:
                raise InputError(
                    "--with-ingest-account needs MQTT_URL with the ingest user and password"
                )
            devices.set_service_account(
                conn, username=endpoint.username, role="ingest", password=endpoint.password
            )
        signalled = devices.write_broker_files(
            conn, password_file=passwords, acl_file=acl, pid_file=s.MOSQUITTO_PID_FILE
        )
    print(f"wrote {passwords} and {acl}" + ("; broker reloaded" if signalled else ""))
    if tls_dir:
        from pisman.certs import ensure_broker_certificates, split_hosts

        made = ensure_broker_certificates(Path(tls_dir), split_hosts(s.PISMAN_BROKER_CERT_HOSTS))
        print(f"made {', '.join(made)}" if made else f"TLS files in {tls_dir} kept")


def _read_password(password_stdin: bool) -> str:
    """The new password: one line of stdin (--password-stdin), or typed twice at a prompt."""
    import getpass

    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise InputError("no terminal to ask the password on: pipe it with --password-stdin")
    first = getpass.getpass("Kata sandi / password: ")
    second = getpass.getpass("Ulangi kata sandi / repeat password: ")
    if first != second:
        raise InputError("the two passwords differ; nothing was changed")
    return first


@click.group("users", cls=Group, help="dashboard/API user accounts: add, list, disable, enable")
def users_group() -> None:
    """`pisman users ACTION`."""


@users_group.command("add", help="create a user; the password is asked twice")
@click.argument("username")
@click.option("--role", required=True, type=Choice([r.value for r in Role]))
@click.option(
    "--city",
    multiple=True,
    metavar="CITY",
    help="limit the user to this city (repeat for several; default: every city)",
)
@click.option("--name", default=None, help="display name (default: the username)")
@click.option("--password-stdin", is_flag=True, help="read the password from one line of stdin")
def cmd_users_add(
    username: str, role: str, city: tuple[str, ...], name: str | None, password_stdin: bool
) -> None:
    """Create a user account (the password is asked for, never given as an argument)."""
    from pisman import db, users

    s = _settings()
    password = _read_password(password_stdin)
    problem = users.password_problem(password, username)
    if problem:  # before connecting: a weak password never reaches the database
        raise UserError(
            f"password refused: {problem} (at least {users.MIN_PASSWORD_LENGTH} characters,"
            " not a common one, not containing the username)"
        )
    with db.connect(s.DATABASE_URL) as conn:
        user = users.add_user(
            conn,
            username=username,
            password=password,
            role=role,
            cities=city,
            display_name=name,
        )
    cities = ", ".join(user.cities) if user.cities else "every city"
    print(f"user {user.username} ({user.role.value}; {cities}) created")


@users_group.command("list", help="list users")
def cmd_users_list() -> None:
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


@users_group.command("disable", help="disable a user: no login, open sessions end")
@click.argument("username")
def cmd_users_disable(username: str) -> None:
    """Disable an account: no login, its open sessions end at once."""
    _set_disabled(username, disabled=True)


@users_group.command("enable", help="enable a user again (clears a lockout)")
@click.argument("username")
def cmd_users_enable(username: str) -> None:
    """Enable an account again (clears a lockout)."""
    _set_disabled(username, disabled=False)


def _set_disabled(username: str, *, disabled: bool) -> None:
    """Disable an account (its sessions end at once) or enable it again."""
    from pisman import db, users

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        users.set_disabled(conn, username=username, disabled=disabled)
    if disabled:
        print(f"user {username} disabled: cannot log in; open sessions ended")
    else:
        print(f"user {username} enabled (lockout cleared)")


PG_BIN = click.option("--pg-bin", default=None, metavar="DIR", help="folder of pg_dump/pg_restore")


@click.command("backup", help="back up the database (pg_dump custom format; TimescaleDB included)")
@click.option("--output", "-o", required=True, metavar="FILE", help="backup file to write")
@PG_BIN
def cmd_backup(output: str, pg_bin: str | None) -> None:
    """Back up the database (DATABASE_URL) into one pg_dump custom-format file."""
    from pisman import backup

    s = _settings()
    result = backup.backup(
        s.DATABASE_URL,
        Path(output),
        pg_bin=Path(pg_bin) if pg_bin else None,
        on_progress=_progress,
    )
    ts = f", TimescaleDB {result.timescaledb_version}" if result.timescaledb_version else ""
    print(
        f"backup {result.path}: {backup.human_bytes(result.size_bytes)}, {result.tables} tables"
        f" (storage: {result.storage}{ts}), {result.seconds:.1f} s"
    )


@click.command("restore", help="restore a backup into a new or empty database")
@click.option(
    "--input", "-i", "input_file", required=True, metavar="FILE", help="backup file to read"
)
@click.option(
    "--database",
    "-d",
    required=True,
    metavar="NAME|URL",
    help="target database: a name on DATABASE_URL's server, or a URL (created if missing)",
)
@click.option(
    "--drop-existing",
    is_flag=True,
    help="drop the target database first if it exists (everything in it is lost)",
)
@PG_BIN
def cmd_restore(input_file: str, database: str, drop_existing: bool, pg_bin: str | None) -> None:
    """Restore a backup into a new (or empty) database."""
    from pisman import backup, db

    s = _settings()
    target = _target_url(s.DATABASE_URL, database)
    result = backup.restore(
        Path(input_file),
        target,
        drop_existing=drop_existing,
        pg_bin=Path(pg_bin) if pg_bin else None,
        on_progress=_progress,
    )
    current = max((m.version for m in db.discover_migrations(s.PISMAN_SQL_DIR)), default=None)
    ts = f", TimescaleDB {result.timescaledb_version}" if result.timescaledb_version else ""
    print(
        f"restored {input_file} into {db.redact(result.url)}: {result.tables} tables{ts},"
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


@click.command("jobs", help="TimescaleDB background jobs (exit 1 when one is failing or overdue)")
def cmd_jobs() -> None:
    """TimescaleDB background jobs and how their runs went; exit 1 when one is failing."""
    from pisman import db, jobs

    s = _settings()
    with db.connect(s.DATABASE_URL) as conn:
        listed = jobs.list_jobs(conn)
    if listed is None:
        print("not applicable: plain PostgreSQL has no TimescaleDB background jobs")
        return
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
        raise CommandFailed(
            f"{len(listed)} jobs: {len(failing)} FAILING, {len(overdue)} OVERDUE (due over an hour"
            " ago, not started): see docs/operations.md, 'TimescaleDB jobs'"
        )
    print(f"{len(listed)} jobs, none failing or overdue")


def _target_url(base_url: str, database: str) -> str:
    """--database: a full URL, or a database name on DATABASE_URL's server."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    if "://" in database or "=" in database:
        return database
    if not database or "/" in database or len(database) > 63:
        raise InputError(f"--database {database[:80]!r}: give a database name or a URL")
    params = {k: str(v) for k, v in conninfo_to_dict(base_url).items() if v is not None}
    params["dbname"] = database
    return make_conninfo("", **params)


def _progress(message: str) -> None:
    """Progress of long work, on stderr so stdout stays the result."""
    print(message, file=sys.stderr, flush=True)


def build_cli() -> click.Group:
    """The whole command tree: the core's commands, then each component's own."""

    @click.group(
        "pisman",
        cls=Group,
        help="Kang PisMan tracker: reduce, separate, utilize.",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    @click.version_option(__version__, prog_name="pisman", message="%(prog)s %(version)s")
    def cli() -> None:
        """The root: nothing to do before a subcommand."""

    for command in (
        cmd_migrate,
        city_group,
        devices_group,
        users_group,
        cmd_backup,
        cmd_restore,
        cmd_jobs,
    ):
        cli.add_command(command)
    for module_name in COMPONENT_CLIS:
        register: Callable[[click.Group], None] = importlib.import_module(module_name).register
        register(cli)
    return cli


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand; every error is one line on stderr and an exit status (clierrors.run)."""
    return run(build_cli(), argv)


if __name__ == "__main__":
    raise SystemExit(main())
