"""The command line: clear one-line errors and exit codes, never a traceback."""

from __future__ import annotations

from pathlib import Path

import click
import psycopg
import pytest

from pisman import __version__, clierrors
from pisman.cli import main
from pisman.db import DatabaseUnavailable
from pisman.settings import PROJECT_ROOT, SettingsError
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
    assert result.stderr.startswith("pisman: invalid choice: 'fly' (choose from api, backup,")
    assert result.stderr.count("\n") == 1


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


# Bad input on each command group: one line naming the command, exit 2, before any work.
USAGE_ERRORS = [
    (["devices", "add", "wb-1", "--kind", "weighbridge"], "pisman devices add", "--site"),
    (["devices", "fly"], "pisman devices", "invalid choice: 'fly'"),
    (["devices", "list", "--colour", "red"], "pisman devices list", "--colour"),
    (["city", "load", "a.yaml", "b.yaml"], "pisman city load", "b.yaml"),
    (["users", "add", "budi", "--role", "root"], "pisman users add", "invalid choice: 'root'"),
    (["users"], "pisman users", "Usage: pisman users"),
    (["keys", "add", "--role", "god", "--name", "x"], "pisman keys add", "invalid choice: 'god'"),
    (["keys", "revoke"], "pisman keys revoke", "KEY_ID"),
    (["backup"], "pisman backup", "--output"),
    (["restore", "--input", "x.dump"], "pisman restore", "--database"),
    (["jobs", "--all"], "pisman jobs", "--all"),
    (["api", "--workers", "0"], "pisman api", "--workers"),
    (["api", "--port", "eighty"], "pisman api", "'eighty' is not a valid integer"),
    (["dashboard", "--threads", "many"], "pisman dashboard", "--threads"),
    (["ingest", "--batch-size", "big"], "pisman ingest", "--batch-size"),
    (["simulate", "run", "--mode", "warp"], "pisman simulate run", "invalid choice: 'warp'"),
    (["simulate", "provision", "--gateway"], "pisman simulate provision", "--gateway"),
    (["up", "--days", "thirty"], "pisman up", "--days"),
    (["migrate", "now"], "pisman migrate", "unexpected extra argument (now)"),
]


@pytest.mark.parametrize(
    ("argv", "where", "needle"),
    USAGE_ERRORS,
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_arguments_are_one_line_naming_the_command_and_exit_2(
    argv: list[str], where: str, needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert needle in err and "Traceback" not in err and out == ""
    if not err.startswith("Usage:"):  # a group without its action shows its help
        assert err.count("\n") == 1 and err.startswith(f"{where}: "), err
        assert f"(see `{where} --help`)" in err


def test_bad_input_found_by_a_command_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere.yaml"
    assert main(["city", "load", str(missing)]) == 2
    assert main(["restore", "--input", str(missing), "--database", "a/b"]) == 2
    assert (
        main(["users", "add", "budi", "--role", "viewer"]) == 2
    )  # no terminal, no --password-stdin
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and all(line.startswith("pisman: ") for line in err), err
    assert str(missing) in err[0]
    assert "--database 'a/b'" in err[1]
    assert "--password-stdin" in err[2]


@pytest.mark.parametrize(
    "argv",
    [["devices", "list"], ["keys", "list"], ["users", "list"], ["jobs"], ["city", "load"]],
    ids=" ".join,
)
def test_an_unreachable_database_is_a_runtime_failure_exit_1_for_every_group(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres:secretpw@127.0.0.1:1/pisman")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("pisman: cannot connect to"), err
    assert "secretpw" not in err


def test_help_and_version_exit_0_and_every_component_registers_its_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"pisman {__version__}"
    assert main(["-h"]) == 0
    listing = capsys.readouterr().out
    for name in ("migrate", "city", "devices", "users", "backup", "restore", "jobs"):
        assert f"  {name} " in listing  # the core's own
    for name in ("ingest", "api", "keys", "dashboard", "simulate", "up"):
        assert f"  {name} " in listing  # registered by the components (COMPONENT_CLIS)
    # Help texts are whole, not cut at Click's default 45 characters.
    assert main(["devices", "--help"]) == 0
    assert "its readings are quarantined" in " ".join(capsys.readouterr().out.split())


def _run(command: click.Command, *argv: str) -> int:
    return clierrors.run(command, list(argv), prog_name="pisman")


def _raising(exc: BaseException) -> click.Command:
    @click.command("boom")
    def boom() -> None:
        raise exc

    return boom


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (clierrors.InputError("the two passwords differ"), 2, "pisman: the two passwords differ"),
        (clierrors.CommandFailed("3 jobs: 1 FAILING"), 1, "pisman: 3 jobs: 1 FAILING"),
        (
            SettingsError("API_PORT: 'x' is not a number"),
            2,
            "pisman: API_PORT: 'x' is not a number",
        ),
        (DatabaseUnavailable("cannot connect to x"), 1, "pisman: cannot connect to x"),
        (
            psycopg.OperationalError("server closed the connection\n\tThis probably means..."),
            1,
            "pisman: database error: server closed the connection; This probably means...",
        ),
        (KeyboardInterrupt(), 130, "pisman: interrupted"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_one_handler_turns_each_kind_of_error_into_one_line_and_its_status(
    exc: BaseException, code: int, line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(_raising(exc)) == code
    err = capsys.readouterr().err
    assert err.strip() == line and err.count("\n") <= 2  # Click ends a Ctrl-C'd line first


def test_a_components_own_errors_map_through_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    class CredentialsMissing(Exception):
        pass

    class BrokerGone(Exception):
        pass

    def raising(exc: Exception) -> click.Command:
        @click.command("boom")
        def boom() -> None:
            with clierrors.exit_codes(input_errors=(CredentialsMissing,), failures=(BrokerGone,)):
                raise exc

        return boom

    assert _run(raising(CredentialsMissing("no credentials for wb-1"))) == 2
    assert _run(raising(BrokerGone("broker refused"))) == 1
    assert capsys.readouterr().err == "pisman: no credentials for wb-1\npisman: broker refused\n"
    with pytest.raises(ZeroDivisionError):  # a bug stays a traceback, not a quiet exit status
        _run(raising(ZeroDivisionError()))
