"""Database access shared by every service: connections, pools and the migration runner."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from pisman.logs import log_event

log = logging.getLogger(__name__)

# pg_advisory_lock key for migrations: services that start together must not race.
MIGRATION_LOCK_KEY = 0x50_49_53_4D_41_4E  # "PISMAN"
MIGRATION_FILE = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
CONNECT_TIMEOUT_S = 5


class DatabaseUnavailable(Exception):
    """The database cannot be reached; str() says where and why, without the password."""


class MigrationError(Exception):
    """A migration cannot be applied; str() says which file and why."""


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable DATABASE_URL>"
    host = params.get("host", "localhost")
    return f"postgresql://{params.get('user', '')}@{host}:{params.get('port', 5432)}/{params.get('dbname', '')}"


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    """Open a connection, or raise DatabaseUnavailable with one clear line."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = lines[0] if lines else type(exc).__name__
        raise DatabaseUnavailable(f"cannot connect to {redact(url)}: {reason}") from None


def is_reachable(url: str) -> bool:
    """Whether a connection to the URL's server can be opened (any database will do)."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    params["dbname"] = "postgres"
    try:
        with psycopg.connect(make_conninfo("", **params), connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def ensure_database(url: str) -> bool:
    """Create the URL's database if it does not exist; True when it was created."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    dbname = params.get("dbname")
    if not dbname:
        return False
    admin = make_conninfo("", **{**params, "dbname": "postgres"})
    with connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists:
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return True


def make_pool(
    url: str, *, min_size: int = 1, max_size: int = 4, name: str = "pisman"
) -> ConnectionPool:
    """A synchronous pool, opened and checked."""
    pool = ConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        kwargs={"connect_timeout": CONNECT_TIMEOUT_S},
    )
    pool.open(wait=True, timeout=CONNECT_TIMEOUT_S * 2)
    return pool


def make_async_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 8,
    name: str = "pisman-api",
    timeout_s: float = 30.0,
    statement_timeout_s: float | None = None,
) -> AsyncConnectionPool:
    """An async pool, not yet opened: open it in the application's lifespan.

    A connection is checked before it is handed out; the first dead one found (the server
    restarted) makes the pool check all its idle ones at once, so a request waits for one fresh
    connection instead of failing, with growing pauses, on each dead one in turn. Reconnection
    gives up (and starts afresh with the next request) well within `timeout_s`, so the first
    request after an outage is not kept waiting behind a long backoff. `statement_timeout_s`
    applies to every statement.
    """
    kwargs: dict[str, object] = {"connect_timeout": CONNECT_TIMEOUT_S}
    if statement_timeout_s is not None:
        kwargs["options"] = f"-c statement_timeout={max(1, round(statement_timeout_s * 1000))}"
    sweeps: set[asyncio.Task[None]] = set()

    async def check(conn: psycopg.AsyncConnection) -> None:
        try:
            await AsyncConnectionPool.check_connection(conn)
        except Exception:
            if not sweeps:
                sweep = asyncio.get_running_loop().create_task(pool.check())
                sweeps.add(sweep)
                sweep.add_done_callback(sweeps.discard)
            raise

    pool: AsyncConnectionPool = AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        name=name,
        open=False,
        timeout=timeout_s,
        reconnect_timeout=timeout_s / 2,
        check=check,
        kwargs=kwargs,
    )
    return pool


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered .sql file."""

    version: int
    name: str
    path: Path
    checksum: str

    @property
    def text(self) -> str:
        """The SQL."""
        return self.path.read_text(encoding="utf-8")


def discover_migrations(sql_dir: Path) -> list[Migration]:
    """The numbered migrations in order; raises MigrationError on a bad or duplicate name."""
    if not sql_dir.is_dir():
        raise MigrationError(f"migration folder {sql_dir} does not exist")
    found: dict[int, Migration] = {}
    for path in sorted(sql_dir.glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_lowercase_words.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version} is used twice ({found[version].path.name})"
            )
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        found[version] = Migration(version, match.group(2), path, checksum)
    return [found[v] for v in sorted(found)]


CREATE_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migration (
  version     integer PRIMARY KEY,
  name        text NOT NULL,
  checksum    text NOT NULL,
  applied_at  timestamptz NOT NULL DEFAULT now(),
  duration_ms integer NOT NULL
)
"""


def migrate(
    url: str,
    sql_dir: Path,
    *,
    timezone: str = "Asia/Jakarta",
    timescale: str = "auto",
    bin_retention_days: int | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> list[str]:
    """Apply pending migrations in order, each in its own transaction; return the applied names.

    Re-running is a no-op. A file changed after it was applied is refused: write a new one.
    """
    migrations = discover_migrations(sql_dir)
    applied_now: list[str] = []
    with connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK_KEY,))
        try:
            conn.execute(CREATE_VERSION_TABLE)
            applied = {
                row[0]: (row[1], row[2])
                for row in conn.execute("SELECT version, name, checksum FROM schema_migration")
            }
            for m in migrations:
                if m.version in applied:
                    _, checksum = applied[m.version]
                    if checksum != m.checksum:
                        raise MigrationError(
                            f"{m.path.name} was changed after it was applied "
                            f"(recorded checksum {checksum[:12]}, file {m.checksum[:12]}); "
                            "applied migrations are never edited: add a new numbered file instead"
                        )
                    continue
                if on_progress:
                    on_progress(f"applying {m.path.name}")
                started = time.monotonic()

                # A long migration says what it did (for example how many rows it filled and
                # how long that took) with RAISE NOTICE: shown with the file's name.
                def notice(diag: psycopg.errors.Diagnostic, name: str = m.path.name) -> None:
                    text = f"{name}: {diag.message_primary}"
                    log_event(log, logging.INFO, "migration_notice", file=name, message=text)
                    if on_progress:
                        on_progress(text)

                conn.add_notice_handler(notice)
                try:
                    with conn.transaction():
                        conn.execute(
                            "SELECT set_config('pisman.timezone', %s, true),"
                            " set_config('pisman.timescale', %s, true),"
                            " set_config('pisman.bin_retention_days', %s, true)",
                            (timezone, timescale, str(bin_retention_days or "")),
                        )
                        conn.execute(m.text.encode("utf-8"))
                        conn.execute(
                            "INSERT INTO schema_migration (version, name, checksum, duration_ms)"
                            " VALUES (%s, %s, %s, %s)",
                            (
                                m.version,
                                m.name,
                                m.checksum,
                                int((time.monotonic() - started) * 1000),
                            ),
                        )
                except psycopg.Error as exc:
                    detail = (
                        str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                    )
                    raise MigrationError(
                        f"{m.path.name} failed and was rolled back: {detail}"
                    ) from exc
                finally:
                    conn.remove_notice_handler(notice)
                log_event(
                    log,
                    logging.INFO,
                    "migration_applied",
                    file=m.path.name,
                    ms=int((time.monotonic() - started) * 1000),
                )
                applied_now.append(m.path.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK_KEY,))
    return applied_now


def require_current_schema(url: str, sql_dir: Path) -> None:
    """Raise MigrationError naming what is missing unless every migration file is applied unchanged.

    Services call this at start so that an old schema gives one clear line, not errors per request.
    """
    migrations = discover_migrations(sql_dir)
    with connect(url) as conn:
        try:
            rows = conn.execute("SELECT version, checksum FROM schema_migration").fetchall()
        except psycopg.errors.UndefinedTable:
            raise MigrationError(
                f"{redact(url)} has no schema: run `pisman migrate` first"
            ) from None
    applied: dict[int, str] = {int(version): str(checksum) for version, checksum in rows}
    missing = [m.path.name for m in migrations if m.version not in applied]
    changed = [
        m.path.name for m in migrations if m.version in applied and applied[m.version] != m.checksum
    ]
    if changed:
        raise MigrationError(
            f"{', '.join(changed)} differ from what {redact(url)} was built with; "
            "applied migrations are never edited"
        )
    if missing:
        raise MigrationError(
            f"{redact(url)} lacks {', '.join(missing)}: run `pisman migrate` first"
        )


def storage_kind(conn: psycopg.Connection) -> str:
    """'timescaledb' or 'postgresql': how the schema was built."""
    row = conn.execute("SELECT value FROM pisman_meta WHERE key = 'storage'").fetchone()
    return str(row[0]) if row else "unknown"
