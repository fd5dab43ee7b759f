"""The command line: clear one-line errors and exit codes, never a traceback."""

from __future__ import annotations

import psycopg

from pisman.settings import PROJECT_ROOT
from tests.support.cli import run_pisman


def test_invalid_setting_stops_with_one_line_naming_the_variable() -> None:
    result = run_pisman("migrate", env={"API_PORT": "eighty"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "API_PORT" in lines[0] and "eighty" in lines[0]


def test_invalid_time_zone_is_named() -> None:
    result = run_pisman("migrate", env={"PISMAN_TIMEZONE": "Asia/Bandung"})
    assert result.returncode == 2
    assert "PISMAN_TIMEZONE" in result.stderr and "Traceback" not in result.stderr


def test_secret_settings_are_not_echoed_back() -> None:
    result = run_pisman("migrate", env={"MQTT_URL": "http://user:hunter2@host"})
    assert result.returncode == 2
    assert "MQTT_URL" in result.stderr and "hunter2" not in result.stderr


def test_unreachable_database_gives_one_clear_line() -> None:
    result = run_pisman(
        "migrate", env={"DATABASE_URL": "postgresql://postgres:secretpw@127.0.0.1:1/pisman"}
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "cannot connect to postgresql://postgres@127.0.0.1:1/" in result.stderr
    assert "secretpw" not in result.stderr


def test_unknown_subcommand_is_a_usage_error() -> None:
    result = run_pisman("fly")
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def test_migrate_then_provision_a_device_prints_credentials_once(db_url: str) -> None:
    with psycopg.connect(db_url) as conn:
        conn.execute("INSERT INTO city (city_id, name) VALUES ('bandung', 'Kota Bandung')")
        conn.execute("INSERT INTO district VALUES ('bandung', 'coblong', 'Coblong')")
        conn.execute(
            "INSERT INTO site (site_id, city_id, district_id, name, site_type)"
            " VALUES ('tps-dago', 'bandung', 'coblong', 'TPS Dago', 'depot')"
        )
    env = {"DATABASE_URL": db_url}
    assert run_pisman("migrate", env=env).returncode == 0
    result = run_pisman(
        "devices", "add", "wb-dago-1", "--site", "tps-dago", "--kind", "weighbridge", env=env
    )
    assert result.returncode == 0, result.stderr
    password = next(
        line.split(":", 1)[1].split()[0]
        for line in result.stdout.splitlines()
        if "MQTT password" in line
    )
    with psycopg.connect(db_url) as conn:
        stored = conn.execute(
            "SELECT password_hash FROM device WHERE device_id = 'wb-dago-1'"
        ).fetchone()[0]
    assert password not in stored and stored.startswith("$7$101$")
    again = run_pisman(
        "devices", "add", "wb-dago-1", "--site", "tps-dago", "--kind", "weighbridge", env=env
    )
    assert again.returncode == 2 and "already exists" in again.stderr
    unknown = run_pisman(
        "devices", "add", "wb-x", "--site", "nowhere", "--kind", "weighbridge", env=env
    )
    assert unknown.returncode == 2 and "no site 'nowhere'" in unknown.stderr
    listing = run_pisman("devices", "list", env=env)
    assert "wb-dago-1" in listing.stdout and "1 device(s)" in listing.stdout


def test_api_and_ingest_refuse_to_start_on_a_schema_missing_migrations(
    empty_db_url: str, tmp_path
) -> None:
    import shutil

    from pisman import db

    partial = tmp_path / "sql"
    partial.mkdir()
    for name in ("001_core.sql", "002_readings.sql"):
        shutil.copy(PROJECT_ROOT / "sql" / name, partial / name)
    db.migrate(empty_db_url, partial)
    result = run_pisman("api", env={"DATABASE_URL": empty_db_url})
    assert result.returncode == 1
    assert "lacks 003_category_map.sql" in result.stderr and "run `pisman migrate`" in result.stderr
    assert "Traceback" not in result.stderr
    ingest = run_pisman("ingest", env={"DATABASE_URL": empty_db_url, "INGEST_METRICS_PORT": "0"})
    assert ingest.returncode == 1
    assert "lacks 003_category_map.sql" in ingest.stderr and "Traceback" not in ingest.stderr
