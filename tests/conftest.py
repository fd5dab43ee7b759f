"""Shared fixtures: real PostgreSQL databases and real Mosquitto brokers, one per test or module."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from pisman import db
from pisman.settings import PROJECT_ROOT, get_settings
from tests.support.broker import Mosquitto, free_port

pytest_plugins: list[str] = []

ADMIN_URL = os.environ.get("PISMAN_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SQL_DIR = PROJECT_ROOT / "sql"
# Variables our settings read: cleared for every test so results never depend on the shell.
_SETTINGS_PREFIXES = (
    "PISMAN_",
    "DATABASE_URL",
    "MQTT_",
    "API_",
    "DASHBOARD_",
    "INGEST_",
    "MOSQUITTO_",
    "LOG_LEVEL",
)


def _url_for(dbname: str) -> str:
    """The admin URL pointed at another database (a URL, as DATABASE_URL must be)."""
    parts = urlsplit(ADMIN_URL)
    return urlunsplit(parts._replace(path=f"/{dbname}"))


def create_database(*, template: str | None = None, prefix: str = "pisman_t") -> str:
    """Create a uniquely named database (optionally from a template); return its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        conn.execute(stmt)
    return _url_for(name)


def drop_database(url: str) -> None:
    """Drop a test database, disconnecting whoever is still on it."""
    name = psycopg.conninfo.conninfo_to_dict(url)["dbname"]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(str(name)))
        )


@pytest.fixture(autouse=True)
def clean_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    """Every test starts from the defaults, not from the developer's shell or .env file."""
    for key in list(os.environ):
        if key.startswith(_SETTINGS_PREFIXES):
            monkeypatch.delenv(key, raising=False)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))  # no stray .env is picked up
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def pg_available() -> None:
    """Fail clearly (not with a traceback per test) when PostgreSQL is down."""
    try:
        with psycopg.connect(ADMIN_URL, connect_timeout=3):
            pass
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {ADMIN_URL}: {exc}. Start it (see README).")


@pytest.fixture(scope="session")
def migrated_template(pg_available: None) -> Iterator[str]:
    """A database with every migration applied, copied for each test (fast CREATE ... TEMPLATE)."""
    url = create_database(prefix="pisman_tpl")
    db.migrate(url, SQL_DIR)
    name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    yield name
    drop_database(url)


@pytest.fixture
def db_url(migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    url = create_database(template=migrated_template)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def module_db_url(migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database shared by one test module."""
    url = create_database(template=migrated_template)
    yield url
    drop_database(url)


@pytest.fixture
def empty_db_url(pg_available: None) -> Iterator[str]:
    """A fresh database with no schema at all."""
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A private anonymous Mosquitto on a free port (MQTT 3.1.1 and 5)."""
    m = Mosquitto(tmp_path_factory.mktemp("mosquitto"), port=free_port())
    m.start()
    yield m
    m.stop()
