"""The migration runner: ordered, recorded, idempotent, refusing edited files, safe to race."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import psycopg
import pytest

from pisman import db
from pisman.settings import PROJECT_ROOT
from tests.support.databases import Backend

SQL_DIR = PROJECT_ROOT / "sql"


def _tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


def test_full_chain_applies_to_empty_database_and_rerun_is_noop(empty_db_url: str) -> None:
    applied = db.migrate(empty_db_url, SQL_DIR)
    files = sorted(p.name for p in SQL_DIR.glob("*.sql"))
    assert applied == files
    tables = _tables(empty_db_url)
    for table in (
        "city",
        "district",
        "site",
        "device",
        "target",
        "weighing",
        "bin_reading",
        "quarantine",
        "category_map",
        "weighing_hourly",
        "weighing_daily",
        "bin_hourly",
    ):
        assert table in tables
    with psycopg.connect(empty_db_url) as conn:
        before = conn.execute(
            "SELECT version, checksum, applied_at FROM schema_migration ORDER BY 1"
        ).fetchall()
    assert db.migrate(empty_db_url, SQL_DIR) == []
    with psycopg.connect(empty_db_url) as conn:
        after = conn.execute(
            "SELECT version, checksum, applied_at FROM schema_migration ORDER BY 1"
        ).fetchall()
    assert before == after
    assert len(after) == len(files)


def test_edited_applied_migration_is_refused(empty_db_url: str, tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    db.migrate(empty_db_url, sql_dir)
    edited = sql_dir / "002_readings.sql"
    edited.write_text(edited.read_text() + "\n-- a harmless-looking edit\n")
    with pytest.raises(
        db.MigrationError, match=r"002_readings\.sql was changed after it was applied"
    ):
        db.migrate(empty_db_url, sql_dir)


def test_new_migration_is_applied_after_the_others(empty_db_url: str, tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    db.migrate(empty_db_url, sql_dir)
    (sql_dir / "999_extra.sql").write_text("CREATE TABLE extra_thing (id int);")
    assert db.migrate(empty_db_url, sql_dir) == ["999_extra.sql"]
    assert "extra_thing" in _tables(empty_db_url)


def test_failed_migration_rolls_back_and_is_not_recorded(empty_db_url: str, tmp_path: Path) -> None:
    sql_dir = tmp_path / "sql"
    shutil.copytree(SQL_DIR, sql_dir)
    db.migrate(empty_db_url, sql_dir)
    (sql_dir / "999_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nSELECT no_such_function();"
    )
    with pytest.raises(db.MigrationError, match=r"999_broken\.sql failed and was rolled back"):
        db.migrate(empty_db_url, sql_dir)
    assert "half_done" not in _tables(empty_db_url)
    with psycopg.connect(empty_db_url) as conn:
        assert conn.execute(
            "SELECT count(*) FROM schema_migration WHERE version = 999"
        ).fetchone() == (0,)


def test_badly_named_migration_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "1_first.sql").write_text("SELECT 1;")
    with pytest.raises(db.MigrationError, match=r"NNN_lowercase_words\.sql"):
        db.discover_migrations(tmp_path)


def test_services_starting_together_apply_each_migration_once(empty_db_url: str) -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(db.migrate(empty_db_url, SQL_DIR))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert sorted(len(r) for r in results) == [0, 0, len(list(SQL_DIR.glob("*.sql")))]


def test_storage_path_is_recorded_and_built_for_the_backend(db_url: str, backend: Backend) -> None:
    with psycopg.connect(db_url) as conn:
        assert db.storage_kind(conn) == backend.name
        assert conn.execute("SELECT pisman_rollup_timezone()").fetchone() == ("Asia/Jakarta",)
        rollup_kinds = dict(
            conn.execute(
                "SELECT c.relname, c.relkind FROM pg_class c"
                " WHERE c.relname IN ('weighing_hourly', 'weighing_daily', 'bin_hourly')"
                " AND c.relnamespace = 'public'::regnamespace"
            ).fetchall()
        )
        if backend.is_timescaledb:
            hypertables = {
                r[0]
                for r in conn.execute(
                    "SELECT hypertable_name FROM timescaledb_information.hypertables"
                    " WHERE hypertable_schema = 'public'"
                )
            }
            live_aggregates = dict(
                conn.execute(
                    "SELECT view_name, materialized_only"
                    " FROM timescaledb_information.continuous_aggregates"
                ).fetchall()
            )
            assert {"weighing", "bin_reading"} <= hypertables
            # Real-time: rows above the materialised range are read from the raw tables.
            assert live_aggregates == {
                "weighing_hourly": False,
                "weighing_daily": False,
                "bin_hourly": False,
            }
            assert set(rollup_kinds.values()) == {"v"}
        else:
            assert conn.execute(
                "SELECT count(*) FROM pg_extension WHERE extname = 'timescaledb'"
            ).fetchone() == (0,)
            assert set(rollup_kinds.values()) == {"r"}
        assert len(rollup_kinds) == 3


def test_unknown_rollup_timezone_fails_the_migration(empty_db_url: str) -> None:
    with pytest.raises(db.MigrationError, match=r"001_core\.sql failed"):
        db.migrate(empty_db_url, SQL_DIR, timezone="Mars/Olympus_Mons")


def test_new_city_gets_the_default_category_map(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO city (city_id, name) VALUES ('cimahi', 'Kota Cimahi')")
        rows = dict(
            ((st, stream, own), (cat, sign))
            for st, stream, own, cat, sign in conn.execute(
                "SELECT site_type, stream, from_own_site, category, sign FROM category_map"
                " WHERE city_id = 'cimahi' AND material = 'plastic'"
            )
        )
    assert rows[("waste_bank", "deposit", False)] == ("reduce", 1)
    # A central bank receiving from a unit bank is an internal transfer: no fate.
    assert ("waste_bank_hub", "deposit", True) not in rows or rows[
        ("waste_bank_hub", "deposit", True)
    ][0] is None
    assert rows[("processing", "to_processing", False)] == ("utilize", 1)
    assert rows[("processing", "to_landfill", False)] == ("utilize", -1)
    assert rows[("landfill", "to_landfill", False)] == ("residual", 1)
