"""`pisman backup` and `pisman restore`: a restored database answers the API byte for byte like the
original, and bad files, busy targets, the wrong server and missing tools are refused clearly."""

from __future__ import annotations

import os
import random
import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pisman import keys
from tests.support import cli
from tests.support.api_seed import (
    CITY,
    insert_bin_reading,
    insert_weighings,
    random_weighings,
    seed_city,
)
from tests.support.databases import PLAIN, Backend

WEEK_START = datetime.fromisoformat("2026-03-02T00:00:00+07:00")  # a Monday, local midnight
MONTH = {"from": "2026-03-01", "to": "2026-04-01"}
GROUPS = ("category", "district", "site", "site_type", "material")
# The fields that differ between two answers a second apart: when the answer was made, and
# how long ago a device was last heard from.
NOW_DEPENDENT = re.compile(rb'"(as_of|silent_for_s)":("[^"]*"|[0-9.]+)')


def run_pisman(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real command line; a backup or restore of a populated database may take minutes."""
    return cli.run_pisman(*args, env=env, timeout=300)


def _dbname(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


def _populate(url: str) -> str:
    """A city with a week of weighings at every site type, bin readings, quarantine rows and an
    admin key; on TimescaleDB the week's chunks are compressed. Returns the key."""
    with psycopg.connect(url) as conn:
        seed_city(conn)
        rows = random_weighings(random.Random(7), WEEK_START, 7 * 24, 3)
        insert_weighings(conn, rows)
        for i in range(12):
            ts = WEEK_START + timedelta(hours=5 * i)
            insert_bin_reading(conn, f"bin-{i % 3:03d}", ts, (i % 10) / 10, seq=i + 1)
        conn.execute(
            "INSERT INTO quarantine (city_id, topic, payload, reason, site_id, device_id, kind)"
            " VALUES (%s, 'pisman/v1/tpa-gate/scale-tpa-gate/weighing', %s,"
            " 'net_kg: must be <= 60000', 'tpa-gate', 'scale-tpa-gate', 'weighing')",
            (CITY, b'{"net_kg": 70000}'),
        )
        conn.execute(
            "INSERT INTO quarantine (city_id, topic, payload, reason, status)"
            " VALUES (%s, 'x/y', '\\x00ff'::bytea, 'topic must be pisman/v1/...', 'discarded')",
            (CITY,),
        )
        key = keys.create_key(conn, role="admin", name="backup-test")
        conn.commit()
        if conn.execute("SELECT pisman_has_timescale()").fetchone() == (True,):
            compressed = conn.execute(
                "SELECT count(compress_chunk(c)) FROM show_chunks('weighing') AS c"
            ).fetchone()
            conn.commit()
            assert compressed is not None and compressed[0] >= 1
    return key


def _row_counts(url: str) -> dict[str, int]:
    """Rows of every table, view and aggregate of the schema (hypertables count their chunks)."""
    with psycopg.connect(url) as conn:
        names = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')"
                " ORDER BY c.relname"
            )
        ]
        counts = {}
        for name in names:
            row = conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
            ).fetchone()
            assert row is not None
            counts[name] = int(row[0])
    return counts


@contextmanager
def _client(url: str, key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from api.app import create_app
    from pisman.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("PISMAN_CITY", CITY)
    monkeypatch.setenv("MQTT_URL", "mqtt://127.0.0.1:1")
    get_settings.cache_clear()
    with TestClient(create_app()) as client:
        client.headers["X-API-Key"] = key
        yield client
    get_settings.cache_clear()


def _answers(url: str, key: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[int, bytes]]:
    """Status and body bytes of the routes an officer or planner reads."""
    requests: list[tuple[str, dict[str, str]]] = []
    for bucket in ("day", "month"):
        for group in GROUPS:
            requests.append(("/v1/tonnage", {**MONTH, "bucket": bucket, "group_by": group}))
    requests += [
        ("/v1/tonnage", {**MONTH, "bucket": "week", "group_by": "category,district"}),
        ("/v1/tonnage", {"from": "2026-03-03", "to": "2026-03-04", "bucket": "hour"}),
        ("/v1/progress", {"date": "2026-03-05", "trend_days": "7"}),
        ("/v1/reports/national", {"month": "2026-03"}),
        ("/v1/reports/national", {"year": "2026"}),
        ("/v1/exports/monthly.csv", {"month": "2026-03"}),
        ("/v1/devices", {}),
        ("/v1/sites", {}),
        ("/v1/bins", {}),
        ("/v1/quarantine", {}),
        ("/v1/targets", {}),
    ]
    answers = {}
    with _client(url, key, monkeypatch) as client:
        for path, params in requests:
            r = client.get(path, params=params)
            answers[f"{path}?{sorted(params.items())}"] = (
                r.status_code,
                NOW_DEPENDENT.sub(rb'"\1":"-"', r.content),
            )
    return answers


@pytest.fixture(scope="module")
def populated(
    backend: Backend, migrated_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, str, Path]]:
    """A populated database, its admin key, and a backup of it made with `pisman backup`."""
    url = backend.create_database(template=migrated_template)
    key = _populate(url)
    out = tmp_path_factory.mktemp("backup") / "pisman.dump"
    result = run_pisman("backup", "--output", str(out), env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert out.is_file() and not out.with_name("pisman.dump.partial").exists()
    assert "dumping public.weighing" in result.stderr  # progress on stderr
    yield url, key, out
    backend.drop_database(url)


@pytest.fixture
def new_db_name(backend: Backend) -> Iterator[str]:
    """A database name nobody uses yet; dropped afterwards if something made it."""
    name = f"pisman_restored_{os.urandom(5).hex()}"
    yield name
    backend.drop_database(backend.url_for(name))


def _exists(backend: Backend, name: str) -> bool:
    with psycopg.connect(backend.admin_url) as conn:
        return (
            conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            is not None
        )


def test_restored_database_answers_the_api_byte_for_byte_and_needs_no_migration(
    populated: tuple[str, str, Path],
    backend: Backend,
    new_db_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, key, dump = populated
    restored = backend.url_for(new_db_name)

    result = run_pisman(
        "restore", "--input", str(dump), "--database", new_db_name, env={"DATABASE_URL": url}
    )
    assert result.returncode == 0, result.stderr
    assert "restoring public.weighing" in result.stderr
    if backend.is_timescaledb:
        assert "timescaledb_post_restore" in result.stderr

    migrate = run_pisman("migrate", env={"DATABASE_URL": restored})
    assert migrate.returncode == 0, migrate.stderr
    assert "0 migration(s) applied" in migrate.stdout
    assert f"storage: {backend.name}" in migrate.stdout

    original_counts, restored_counts = _row_counts(url), _row_counts(restored)
    assert original_counts == restored_counts
    assert original_counts["weighing"] == 7 * 24 * 3 and original_counts["bin_reading"] == 12
    assert original_counts["quarantine"] == 2 and original_counts["weighing_daily"] > 0

    original, copy = _answers(url, key, monkeypatch), _answers(restored, key, monkeypatch)
    assert {k: v[0] for k, v in original.items()} == dict.fromkeys(original, 200)
    differing = [request for request, answer in original.items() if copy[request] != answer]
    assert differing == [], [(r, original[r], copy[r]) for r in differing[:2]]
    tonnage = original[
        "/v1/tonnage?" + str(sorted({**MONTH, "bucket": "day", "group_by": "site"}.items()))
    ]
    assert b'"tonnes"' in tonnage[1]  # the comparison was over real numbers

    if backend.is_timescaledb:
        with psycopg.connect(restored) as conn:
            restoring = conn.execute("SHOW timescaledb.restoring").fetchone()
            compressed = conn.execute(
                "SELECT count(*) FROM timescaledb_information.chunks"
                " WHERE hypertable_name = 'weighing' AND is_compressed"
            ).fetchone()
            jobs = conn.execute("SELECT count(*) FROM timescaledb_information.jobs").fetchone()
        assert restoring == ("off",)
        assert compressed is not None and compressed[0] >= 1
        assert jobs is not None and jobs[0] >= 4  # the refresh and compression policies came too


def test_corrupt_or_missing_backup_is_refused_in_one_line_and_creates_nothing(
    populated: tuple[str, str, Path], backend: Backend, new_db_name: str, tmp_path: Path
) -> None:
    url, _, dump = populated
    data = dump.read_bytes()
    truncated = tmp_path / "truncated.dump"
    truncated.write_bytes(data[: len(data) * 2 // 3])
    flipped = tmp_path / "flipped.dump"
    middle = len(data) // 2
    flipped.write_bytes(
        data[:middle] + bytes(b ^ 0x5A for b in data[middle : middle + 512]) + data[middle + 512 :]
    )
    text = tmp_path / "notes.txt"
    text.write_text("this is not a backup\n")
    for bad in (truncated, flipped, text, tmp_path / "missing.dump"):
        result = run_pisman(
            "restore", "--input", str(bad), "--database", new_db_name, env={"DATABASE_URL": url}
        )
        assert result.returncode == 2, (bad.name, result.stderr)
        errors = [ln for ln in result.stderr.splitlines() if ln.startswith("pisman:")]
        assert len(errors) == 1 and str(bad) in errors[0], (bad.name, result.stderr)
        assert "Traceback" not in result.stderr
        assert not _exists(backend, new_db_name), bad.name


def test_restore_refuses_a_database_that_is_not_empty_unless_told_to_drop_it(
    populated: tuple[str, str, Path], backend: Backend, new_db_name: str
) -> None:
    url, _, dump = populated
    target = backend.url_for(new_db_name)
    with psycopg.connect(backend.admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(new_db_name)))
    with psycopg.connect(target) as conn:
        conn.execute("CREATE TABLE precious (note text)")
        conn.execute("INSERT INTO precious VALUES ('keep me')")

    refused = run_pisman("restore", "-i", str(dump), "-d", target, env={"DATABASE_URL": url})
    assert refused.returncode == 2
    assert "not empty" in refused.stderr and "--drop-existing" in refused.stderr
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT note FROM precious").fetchall() == [("keep me",)]

    replaced = run_pisman(
        "restore", "-i", str(dump), "-d", target, "--drop-existing", env={"DATABASE_URL": url}
    )
    assert replaced.returncode == 0, replaced.stderr
    with psycopg.connect(target) as conn:
        assert conn.execute("SELECT to_regclass('precious')").fetchone() == (None,)
    assert _row_counts(target) == _row_counts(url)


@pytest.mark.backend("timescaledb", reason="a TimescaleDB backup offered to a plain server")
def test_timescaledb_backup_on_a_plain_server_is_refused_with_the_reason(
    populated: tuple[str, str, Path],
) -> None:
    url, _, dump = populated
    name = f"pisman_wrong_{os.urandom(5).hex()}"
    target = PLAIN.url_for(name)
    try:
        result = run_pisman("restore", "-i", str(dump), "-d", target, env={"DATABASE_URL": url})
        assert result.returncode == 2, result.stderr
        assert "TimescaleDB 2." in result.stderr and "does not preload" in result.stderr
        with psycopg.connect(PLAIN.admin_url) as conn:
            made = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        assert made is None
    finally:
        PLAIN.drop_database(target)


def test_unreachable_server_is_one_line_and_status_1(tmp_path: Path) -> None:
    down = "postgresql://postgres:secretpw@127.0.0.1:1/pisman"
    backup = run_pisman("backup", "-o", str(tmp_path / "x.dump"), env={"DATABASE_URL": down})
    (tmp_path / "x.dump").write_bytes(b"PGDMP")
    restore = run_pisman(
        "restore", "-i", str(tmp_path / "x.dump"), "-d", "copy", env={"DATABASE_URL": down}
    )
    for result in (backup, restore):
        assert result.returncode == 1, result.stderr
        assert result.stderr.count("\n") == 1 and "cannot connect to" in result.stderr
        assert "secretpw" not in result.stderr


def test_missing_or_too_old_pg_dump_is_named(
    populated: tuple[str, str, Path], tmp_path: Path
) -> None:
    url, _, _ = populated
    old_bin = tmp_path / "old"
    old_bin.mkdir()
    for name in ("pg_dump", "pg_restore"):
        tool = old_bin / name
        tool.write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) 9.6.24'\n")
        tool.chmod(0o755)
    out = tmp_path / "b.dump"
    too_old = run_pisman(
        "backup", "-o", str(out), "--pg-bin", str(old_bin), env={"DATABASE_URL": url}
    )
    missing = run_pisman(
        "backup", "-o", str(out), "--pg-bin", str(tmp_path / "nowhere"), env={"DATABASE_URL": url}
    )
    assert too_old.returncode == 2 and "pg_dump is too old" in too_old.stderr
    assert "PostgreSQL 9" in too_old.stderr and "postgresql-client-15" in too_old.stderr
    assert missing.returncode == 2 and "pg_dump not found" in missing.stderr
    assert not out.exists()


def test_backup_never_overwrites_a_file(populated: tuple[str, str, Path], tmp_path: Path) -> None:
    url, _, _ = populated
    out = tmp_path / "exists.dump"
    out.write_bytes(b"yesterday's backup")
    result = run_pisman("backup", "-o", str(out), env={"DATABASE_URL": url})
    assert result.returncode == 2 and "already exists" in result.stderr
    assert out.read_bytes() == b"yesterday's backup"


def test_a_restore_that_fails_on_the_server_drops_the_database_it_made(
    db_url: str, backend: Backend, new_db_name: str, tmp_path: Path
) -> None:
    """The backup grants a role that is gone by restore time: pg_restore stops at the GRANT;
    the half-made database is dropped; one line says what failed; status 1."""
    role = f"pisman_gone_{os.urandom(4).hex()}"
    dump = tmp_path / "grants.dump"
    with psycopg.connect(backend.admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {}").format(sql.Identifier(role)))
        try:
            with psycopg.connect(db_url) as conn:
                conn.execute(sql.SQL("GRANT SELECT ON city TO {}").format(sql.Identifier(role)))
            made = run_pisman("backup", "-o", str(dump), env={"DATABASE_URL": db_url})
            assert made.returncode == 0, made.stderr
        finally:
            with psycopg.connect(db_url) as conn:
                conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
            admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))

    result = run_pisman("restore", "-i", str(dump), "-d", new_db_name, env={"DATABASE_URL": db_url})
    assert result.returncode == 1, result.stderr
    errors = [ln for ln in result.stderr.splitlines() if ln.startswith("pisman:")]
    assert len(errors) == 1 and "pg_restore failed" in errors[0] and role in errors[0]
    assert "was dropped" in result.stderr
    assert not _exists(backend, new_db_name)
    if backend.is_timescaledb:  # restore mode was switched off again before the drop
        assert "timescaledb_post_restore" in result.stderr
