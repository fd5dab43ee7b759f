"""Backup and restore of a pisman database with pg_dump/pg_restore (custom format), TimescaleDB's steps included."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from pisman import db

Progress = Callable[[str], None]

# Debian installs each major's client tools here; /usr/bin/pg_dump is a wrapper that may pick
# another major than the server's.
DEBIAN_PG_BIN = "/usr/lib/postgresql/{major}/bin"
TOOL_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")
ARCHIVE_SERVER_VERSION = re.compile(r"^;\s+Dumped from database version:\s+(\d+)\.?(\S*)", re.M)
ARCHIVE_DBNAME = re.compile(r"^;\s+dbname:\s+(\S+)", re.M)
ARCHIVE_FORMAT = re.compile(r"^;\s+Format:\s+(\S+)", re.M)
DUMPING_TABLE = re.compile(r'dumping contents of table "([^"]+)"')
RESTORING_TABLE = re.compile(r'processing data for table "([^"]+)"')
# After the data: indexes (one per chunk on TimescaleDB), constraints, triggers.
POST_DATA_ITEM = re.compile(r"creating (INDEX|CONSTRAINT|FK CONSTRAINT|TRIGGER|POLICY) ")
POST_DATA_EVERY_S = 2.0
TS_METADATA_ENTRY = re.compile(r"^\d+; \d+ \d+ TABLE DATA _timescaledb_catalog metadata ", re.M)
# pg_dump warns about TimescaleDB's own catalog (continuous_agg refers to itself); a full dump
# restores it fine, so the warning is not shown to operators.
KNOWN_HARMLESS = ("circular foreign-key constraints", "detail: continuous_agg", "hint: ")
# What pg_restore says when the file itself is damaged or not an archive.
DAMAGED_ARCHIVE = (
    "input file does not appear to be a valid archive",
    "did not find magic string",
    "could not read input file",
    "unexpected end of file",
    "could not uncompress data",
    "could not decompress data",
)
# A message line of pg_dump/pg_restore or the server (not a verbose line naming a table that
# happens to contain the word).
ERROR_LINE = re.compile(r"(\b(error|fatal)|ERROR|FATAL):")
SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")


class BackupError(Exception):
    """Bad input or an unusable tool or target, found before anything was changed (exit 2)."""


class BackupFailed(Exception):
    """pg_dump or pg_restore failed on the server's side; str() says why in one line (exit 1)."""


@dataclass(frozen=True, slots=True)
class Tool:
    """A PostgreSQL client program and its major version."""

    path: str
    major: int


@dataclass(frozen=True, slots=True)
class ArchiveInfo:
    """What a backup file holds, read from its table of contents."""

    path: Path
    dbname: str
    server_major: int
    server_version: str
    table_data_entries: int
    timescaledb_version: str | None


@dataclass(frozen=True, slots=True)
class BackupResult:
    """A finished backup."""

    path: Path
    size_bytes: int
    seconds: float
    tables: int
    storage: str
    timescaledb_version: str | None


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """A finished restore."""

    url: str
    seconds: float
    tables: int
    timescaledb_version: str | None
    schema_version: int | None


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def _tool_major(path: str) -> int | None:
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except OSError:
        return None
    match = TOOL_VERSION.search(out)
    return int(match.group(1)) if match else None


def find_tool(name: str, server_major: int, pg_bin: Path | None = None) -> Tool:
    """The client program `name` able to talk to a server of this major version.

    pg_dump refuses servers newer than itself, and pg_restore cannot read archives written by a
    newer pg_dump: the tool's major must be at least the server's. Looks in `pg_bin` when given,
    else in Debian's folder for the server's major, then on PATH.
    """
    candidates: list[str] = []
    if pg_bin is not None:  # given by the operator: only there
        candidates.append(str(pg_bin / name))
    else:
        candidates.append(str(Path(DEBIAN_PG_BIN.format(major=server_major)) / name))
        on_path = shutil.which(name)
        if on_path:
            candidates.append(on_path)
    found: list[str] = []
    for path in dict.fromkeys(candidates):
        if not os.access(path, os.X_OK):
            continue
        major = _tool_major(path)
        if major is None:
            continue
        if major >= server_major:
            return Tool(path, major)
        found.append(f"{path} is PostgreSQL {major}")
    install = (
        f"install PostgreSQL {server_major}'s client tools (Debian: apt-get install "
        f"postgresql-client-{server_major}) or give --pg-bin DIR"
    )
    if found:
        raise BackupError(
            f"{name} is too old for a PostgreSQL {server_major} server ({'; '.join(found)}): {install}"
        )
    raise BackupError(f"{name} not found: {install}")


def _libpq_env_and_dsn(url: str) -> tuple[dict[str, str], str]:
    """The URL as a conninfo string without its password, which goes into the environment
    instead (so it never shows in the process list)."""
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return env, make_conninfo("", **params)


def _dbname(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname") or "")


def _with_dbname(url: str, dbname: str) -> str:
    params = {k: str(v) for k, v in conninfo_to_dict(url).items() if v is not None}
    params["dbname"] = dbname
    return make_conninfo("", **params)


def _first_error(lines: Sequence[str]) -> str:
    """The most telling line pg_dump/pg_restore wrote: its first error, else its last line."""
    meaningful = [ln.strip() for ln in lines if ln.strip() and not _harmless(ln)]
    for line in meaningful:
        if ERROR_LINE.search(line):
            return line
    return meaningful[-1] if meaningful else "no message"


def _harmless(line: str) -> bool:
    return any(marker in line for marker in KNOWN_HARMLESS)


def _run_streaming(
    argv: list[str], env: dict[str, str], on_line: Callable[[str], None]
) -> tuple[int, list[str]]:
    """Run a client program, feeding each stderr line to on_line; return its status and lines."""
    lines: list[str] = []
    with subprocess.Popen(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    ) as proc:
        assert proc.stderr is not None
        try:
            for line in proc.stderr:
                lines.append(line.rstrip("\n"))
                on_line(line)
        except BaseException:
            proc.kill()
            raise
        status = proc.wait()
    return status, lines


# --- backup -----------------------------------------------------------------------------------

SERVER_FACTS_SQL = """
SELECT current_setting('server_version_num')::int / 10000,
       (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),
       to_regclass('public.schema_migration') IS NOT NULL
"""


def backup(
    url: str, output: Path, *, pg_bin: Path | None = None, on_progress: Progress = lambda _: None
) -> BackupResult:
    """Dump the database at `url` into `output` (pg_dump custom format), checked readable.

    The file appears only when complete: pg_dump writes `output.partial`, which is read back
    (its table of contents) and then renamed. Raises BackupError before touching anything when
    the output exists, its folder is missing or the tools are unusable; DatabaseUnavailable
    when the server cannot be reached; BackupFailed when pg_dump fails.
    """
    if output.exists():
        raise BackupError(f"{output} already exists: choose another name or move it away first")
    if not output.parent.is_dir():
        raise BackupError(f"folder {output.parent} does not exist")
    with db.connect(url) as conn:
        row = conn.execute(SERVER_FACTS_SQL).fetchone()
        assert row is not None
        server_major, ts_version, is_pisman = int(row[0]), row[1], bool(row[2])
        storage = db.storage_kind(conn) if is_pisman else "unknown"
    if not is_pisman:
        raise BackupError(
            f"{db.redact(url)} holds no pisman schema (no schema_migration table): nothing to back up"
        )
    pg_dump = find_tool("pg_dump", server_major, pg_bin)
    pg_restore = find_tool("pg_restore", server_major, pg_bin)
    env, dsn = _libpq_env_and_dsn(url)
    partial = output.with_name(output.name + ".partial")
    started = time.monotonic()
    tables = 0

    def on_line(line: str) -> None:
        nonlocal tables
        match = DUMPING_TABLE.search(line)
        if match:
            tables += 1
            size = partial.stat().st_size if partial.exists() else 0
            on_progress(
                f"{time.monotonic() - started:7.1f} s {human_bytes(size):>10}  dumping {match.group(1)}"
            )

    what = f"TimescaleDB {ts_version}" if ts_version else "plain PostgreSQL"
    on_progress(
        f"backing up {db.redact(url)} ({what}, PostgreSQL {server_major}) with {pg_dump.path}"
    )
    argv = [pg_dump.path, "--format=custom", "--verbose", f"--file={partial}", f"--dbname={dsn}"]
    try:
        status, lines = _run_streaming(argv, env, on_line)
        if status != 0:
            raise BackupFailed(f"pg_dump failed: {_first_error(lines)}")
        # Read the archive back before calling it a backup.
        listed = subprocess.run(
            [pg_restore.path, "--list", str(partial)], capture_output=True, text=True, env=env
        )
        if listed.returncode != 0:
            raise BackupFailed(
                f"the archive pg_dump wrote cannot be read back: {_first_error(listed.stderr.splitlines())}"
            )
        partial.replace(output)
    finally:
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
    return BackupResult(
        output,
        output.stat().st_size,
        time.monotonic() - started,
        tables,
        storage,
        ts_version,
    )


# --- reading an archive -----------------------------------------------------------------------


def _damaged(path: Path, message: str) -> BackupError:
    return BackupError(f"{path} is not a usable pisman backup (pg_dump custom format): {message}")


def read_archive(
    path: Path, pg_restore: Tool, *, check_data: bool = True, on_progress: Progress = lambda _: None
) -> ArchiveInfo:
    """What the backup file holds; BackupError when it is missing, not an archive or damaged.

    With check_data, every data block is read and decompressed once (pg_restore to /dev/null),
    so a truncated or corrupted file is refused before any database is touched.
    """
    if not path.exists():
        raise BackupError(f"backup file {path} does not exist")
    if not path.is_file():
        raise BackupError(f"{path} is not a file")
    listed = subprocess.run(
        [pg_restore.path, "--list", str(path)], capture_output=True, text=True, errors="replace"
    )
    if listed.returncode != 0:
        raise _damaged(path, _first_error(listed.stderr.splitlines()))
    toc = listed.stdout
    version = ARCHIVE_SERVER_VERSION.search(toc)
    dbname = ARCHIVE_DBNAME.search(toc)
    form = ARCHIVE_FORMAT.search(toc)
    if version is None or form is None or form.group(1) != "CUSTOM":
        raise _damaged(path, "its header has no server version or is not in custom format")
    if "TABLE public schema_migration " not in toc:
        raise BackupError(f"{path} is a PostgreSQL backup but not of a pisman database")
    entries = sum(1 for line in toc.splitlines() if " TABLE DATA " in line)
    ts_version: str | None = None
    if re.search(r"^\d+; \d+ \d+ EXTENSION - timescaledb\b", toc, re.M):
        ts_version = _timescaledb_version(path, pg_restore, toc)
    if check_data:
        on_progress(f"checking every block of {path} ({human_bytes(path.stat().st_size)})")
        checked = subprocess.run(
            [pg_restore.path, "--file=/dev/null", str(path)],
            capture_output=True,
            text=True,
            errors="replace",
        )
        if checked.returncode != 0:
            raise _damaged(path, _first_error(checked.stderr.splitlines()))
    return ArchiveInfo(
        path,
        dbname.group(1) if dbname else "?",
        int(version.group(1)),
        f"{version.group(1)}.{version.group(2)}".rstrip("."),
        entries,
        ts_version,
    )


def _timescaledb_version(path: Path, pg_restore: Tool, toc: str) -> str:
    """The TimescaleDB version the backup was taken with, from its catalog's metadata rows."""
    entry = TS_METADATA_ENTRY.search(toc)
    if entry is None:
        raise _damaged(path, "it holds the timescaledb extension but not its catalog metadata")
    line = toc[entry.start() : toc.index("\n", entry.start())]
    with tempfile.NamedTemporaryFile("w", suffix=".list") as listing:
        listing.write(line + "\n")
        listing.flush()
        data = subprocess.run(
            [pg_restore.path, "--file=-", f"--use-list={listing.name}", str(path)],
            capture_output=True,
            text=True,
            errors="replace",
        )
    if data.returncode != 0:
        raise _damaged(path, _first_error(data.stderr.splitlines()))
    for row in data.stdout.splitlines():
        key, _, rest = row.partition("\t")
        if key == "timescaledb_version":
            return rest.split("\t", 1)[0]
    raise _damaged(path, "its TimescaleDB catalog does not record a version")


# --- restore ----------------------------------------------------------------------------------

TARGET_SERVER_SQL = """
SELECT current_setting('server_version_num')::int / 10000,
       current_setting('shared_preload_libraries') LIKE '%%timescaledb%%',
       EXISTS (SELECT 1 FROM pg_available_extension_versions
               WHERE name = 'timescaledb' AND version = %s),
       (SELECT string_agg(version, ', ' ORDER BY version) FROM pg_available_extension_versions
        WHERE name = 'timescaledb'),
       EXISTS (SELECT 1 FROM pg_database WHERE datname = %s)
"""
# Anything a restore would collide with: relations outside the system schemas, or extensions
# beyond the default plpgsql.
CONTENTS_SQL = """
SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname <> ALL(%s) AND n.nspname NOT LIKE 'pg_temp%%'
          AND n.nspname NOT LIKE 'pg_toast%%'),
       (SELECT count(*) FROM pg_extension WHERE extname <> 'plpgsql')
"""


@contextlib.contextmanager
def _maintenance(url: str) -> Iterator[psycopg.Connection]:
    """An autocommit connection to the target server's `postgres` database."""
    with db.connect(_with_dbname(url, "postgres"), autocommit=True) as conn:
        yield conn


def restore(
    archive: Path,
    url: str,
    *,
    drop_existing: bool = False,
    pg_bin: Path | None = None,
    on_progress: Progress = lambda _: None,
) -> RestoreResult:
    """Restore a backup into the database `url` (created if missing; refused if not empty
    unless drop_existing, which drops it first).

    A TimescaleDB backup needs a server preloading TimescaleDB at the backup's version: the new
    database gets `CREATE EXTENSION timescaledb VERSION ...`, then timescaledb_pre_restore(),
    pg_restore, and timescaledb_post_restore() (always, so the database never stays in restore
    mode). A restore that fails drops the database it created. Then ANALYZE, so the first
    queries get good plans.
    """
    dbname = _dbname(url)
    if not dbname:
        raise BackupError("the target URL names no database")
    started = time.monotonic()
    with _maintenance(url) as conn:
        server_major = int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000  # type: ignore[index]
        pg_restore = find_tool("pg_restore", server_major, pg_bin)
        info = read_archive(archive, pg_restore, on_progress=on_progress)
        row = conn.execute(TARGET_SERVER_SQL, (info.timescaledb_version or "", dbname)).fetchone()
        assert row is not None
        _, preloads_ts, version_available, versions, exists = row
        target = db.redact(url)
        if info.server_major > server_major:
            raise BackupError(
                f"{archive} comes from PostgreSQL {info.server_version}; the server of {target} is"
                f" PostgreSQL {server_major}: restore on PostgreSQL {info.server_major} or newer"
            )
        if info.timescaledb_version is not None and not (preloads_ts and version_available):
            have = (
                f"has TimescaleDB {versions} available"
                if versions
                else "has no TimescaleDB installed"
            )
            have += "" if preloads_ts else " and does not preload it (shared_preload_libraries)"
            raise BackupError(
                f"{archive} is a TimescaleDB {info.timescaledb_version} backup, but the server of"
                f" {target} {have}: restore it on a server preloading TimescaleDB"
                f" {info.timescaledb_version} (then ALTER EXTENSION timescaledb UPDATE to upgrade)"
            )
        if exists:
            if drop_existing:
                on_progress(f"dropping database {dbname} (--drop-existing)")
                conn.execute(
                    sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(dbname))
                )
                exists = False
            else:
                with db.connect(url) as target_conn:
                    counts = target_conn.execute(CONTENTS_SQL, (list(SYSTEM_SCHEMAS),)).fetchone()
                assert counts is not None
                if counts[0] or counts[1]:
                    raise BackupError(
                        f"database {dbname} is not empty ({counts[0]} relations, {counts[1]}"
                        " extensions): restore into a new database, or add --drop-existing to"
                        " drop it (and everything in it) first"
                    )
        created = not exists
        if created:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(dbname))
            )
    try:
        tables = _restore_into(url, info, pg_restore, on_progress, started)
    except BaseException:
        if created:
            with _maintenance(url) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(dbname)
                    )
                )
            on_progress(f"restore failed: database {dbname} (made for it) was dropped")
        raise
    with db.connect(url, autocommit=True) as conn:
        on_progress(f"{time.monotonic() - started:7.1f} s  ANALYZE (statistics for query plans)")
        conn.execute("ANALYZE")
        row = conn.execute("SELECT max(version) FROM schema_migration").fetchone()
    return RestoreResult(
        url,
        time.monotonic() - started,
        tables,
        info.timescaledb_version,
        int(row[0]) if row and row[0] is not None else None,
    )


def _restore_into(
    url: str, info: ArchiveInfo, pg_restore: Tool, on_progress: Progress, started: float
) -> int:
    """pg_restore into the (empty) database, wrapped in TimescaleDB's restore mode if needed."""
    tables = 0
    post_data = 0
    shown_at = 0.0

    def on_line(line: str) -> None:
        nonlocal tables, post_data, shown_at
        match = RESTORING_TABLE.search(line)
        if match:
            tables += 1
            on_progress(
                f"{time.monotonic() - started:7.1f} s  [{tables:>3}/{info.table_data_entries}]"
                f"  restoring {match.group(1)}"
            )
        elif POST_DATA_ITEM.search(line) and tables:
            post_data += 1
            if time.monotonic() - shown_at >= POST_DATA_EVERY_S:
                shown_at = time.monotonic()
                on_progress(
                    f"{shown_at - started:7.1f} s  indexes and constraints: {post_data} made"
                )

    env, dsn = _libpq_env_and_dsn(url)
    # One transaction per object, stopping at the first error: a restore is complete or it
    # failed, never "N errors ignored". Objects belong to the user restoring.
    argv = [
        pg_restore.path,
        "--verbose",
        "--exit-on-error",
        "--no-owner",
        f"--dbname={dsn}",
        str(info.path),
    ]
    if info.timescaledb_version is None:
        status, lines = _run_streaming(argv, env, on_line)
    else:
        with db.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE EXTENSION IF NOT EXISTS timescaledb VERSION {}").format(
                    sql.Literal(info.timescaledb_version)
                )
            )
            conn.execute("SELECT timescaledb_pre_restore()")
            on_progress(
                f"TimescaleDB {info.timescaledb_version}: extension created, restore mode on"
            )
            try:
                status, lines = _run_streaming(argv, env, on_line)
            finally:
                conn.execute("SELECT timescaledb_post_restore()")
                on_progress("TimescaleDB restore mode off (timescaledb_post_restore)")
    if status != 0:
        message = _first_error(lines)
        if any(marker in message.lower() for marker in DAMAGED_ARCHIVE):
            raise _damaged(info.path, message)
        raise BackupFailed(f"pg_restore failed: {message}")
    return tables
