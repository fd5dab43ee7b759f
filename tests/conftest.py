"""Shared fixtures: real PostgreSQL databases and real Mosquitto brokers, one per test or module.

Every test that takes a database runs twice, once per backend (plain PostgreSQL and
PostgreSQL with TimescaleDB), and its id names the backend: test_x[postgresql].
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from pisman import db
from pisman.settings import PROJECT_ROOT, get_settings
from tests.support.broker import Mosquitto, free_port
from tests.support.browser import close_chromium, headless_chromium
from tests.support.databases import BACKENDS, Backend

pytest_plugins: list[str] = []

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
# CI must run every database test on both backends; elsewhere a missing TimescaleDB cluster
# skips its half of the suite, each test saying why.
_BACKENDS_REQUIRED = os.environ.get("CI") == "true"
_TSDB_UNAVAILABLE = os.environ.get("PISMAN_TEST_TSDB_UNAVAILABLE")


# The longest test modules (both backends) in seconds of one 4-worker run of the suite on 2 cores
# beside other work (2026-12-06): handed out first, so that none of them starts last and makes
# the tail. Only the order depends on these numbers.
_LONG_MODULES_S = {
    "tests/test_dashboard_browser.py": 320,
    "tests/test_stack_up.py": 290,
    "tests/test_api_collection.py": 200,
    "tests/test_auth_users.py": 165,
    "tests/test_dashboard_map.py": 150,
    "tests/test_backup_restore.py": 145,
    "tests/test_dashboard_hostile_input.py": 140,
    "tests/test_dashboard_alerts.py": 130,
    "tests/test_tonnage_grain.py": 125,
    "tests/test_auth_sessions.py": 120,
    "tests/test_dashboard_phone.py": 100,
    "tests/test_ingest_durability.py": 90,
    "tests/test_ingest_hostile.py": 80,
    "tests/test_broker_crash.py": 75,
    "tests/test_dashboard_cities.py": 75,
    "tests/test_ingest_commit_acks.py": 75,
    "tests/test_api_schemathesis.py": 75,
    "tests/test_ingest_service.py": 70,
    "tests/test_chaos.py": 60,
    "tests/test_broker_security.py": 60,
}


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadscope` (each module on one worker, its backends one after the other), the
    longest modules handed out first; xdist's own order is by test count, which started the
    few-test browser modules last."""
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class LongestModulesFirst(LoadScopeScheduling):  # type: ignore[misc]
        _ranked = False

        def _assign_work_unit(self, node: Any) -> None:
            if not self._ranked:  # the first hand-out: the longest known, then by test count
                ranked = sorted(
                    self.workqueue.items(),
                    key=lambda unit: (-_LONG_MODULES_S.get(unit[0], 0), -len(unit[1])),
                )
                self.workqueue.clear()
                self.workqueue.update(ranked)
                self._ranked = True
            super()._assign_work_unit(node)

    return LongestModulesFirst(config, log)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked backend("x", reason=...) is skipped, with its reason, on the other backend."""
    for item in items:
        marker = item.get_closest_marker("backend")
        if marker is None:
            continue
        reason = marker.kwargs.get("reason")
        if not marker.args or not reason:
            raise pytest.UsageError(f"{item.nodeid}: use @pytest.mark.backend(name, reason=...)")
        callspec = getattr(item, "callspec", None)
        current = callspec.params.get("backend") if callspec else None
        if current is not None and current not in marker.args:
            item.add_marker(pytest.mark.skip(reason=f"{'/'.join(marker.args)} only: {reason}"))


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


@pytest.fixture(scope="session", params=[b.name for b in BACKENDS])
def backend(request: pytest.FixtureRequest) -> Backend:
    """The database server this test runs on: every database test runs on each backend."""
    chosen = next(b for b in BACKENDS if b.name == request.param)
    problem = _TSDB_UNAVAILABLE if chosen.is_timescaledb and _TSDB_UNAVAILABLE else chosen.problem()
    if problem is None:
        return chosen
    if chosen.is_timescaledb and not _BACKENDS_REQUIRED:
        pytest.skip(f"{problem} (./run test as root builds and starts it)")
    pytest.fail(f"{problem}. Start it (see README: ./run test does).")


@pytest.fixture(scope="session")
def pg_available(backend: Backend) -> None:
    """Fail clearly (not with a traceback per test) when this backend's server is down."""


@pytest.fixture(scope="session")
def migrated_template(backend: Backend) -> Iterator[str]:
    """A database with every migration applied, copied for each test (fast CREATE ... TEMPLATE)."""
    url = backend.create_database(prefix="pisman_tpl")
    db.migrate(url, SQL_DIR)
    yield backend.seal_template(url)
    backend.drop_database(url)


@pytest.fixture
def db_url(backend: Backend, migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own."""
    url = backend.create_database(template=migrated_template)
    yield url
    backend.drop_database(url)


@pytest.fixture(scope="module")
def module_db_url(backend: Backend, migrated_template: str) -> Iterator[str]:
    """A fresh, migrated database shared by one test module."""
    url = backend.create_database(template=migrated_template)
    yield url
    backend.drop_database(url)


@pytest.fixture(scope="module")
def seeded_template(
    request: pytest.FixtureRequest, backend: Backend, migrated_template: str
) -> Iterator[str]:
    """The migrated template seeded by the requesting module's `seed_database(url)`, once per
    module: for modules whose every test needs the same expensive seed (Argon2 hashes,
    weighings, materialised rollups). Tests take `seeded_db_url`."""
    seed = getattr(request.module, "seed_database", None)
    if seed is None:
        raise pytest.UsageError(
            f"{request.module.__name__} uses seeded_db_url: define seed_database(url)"
        )
    name = backend.seeded_template(migrated_template, seed)
    yield name
    backend.drop_database(backend.url_for(name))


@pytest.fixture
def seeded_db_url(backend: Backend, seeded_template: str) -> Iterator[str]:
    """A fresh copy of the module's seeded database, this test's own to change."""
    url = backend.create_database(template=seeded_template)
    yield url
    backend.drop_database(url)


@pytest.fixture
def empty_db_url(backend: Backend) -> Iterator[str]:
    """A fresh database with no schema at all."""
    url = backend.create_database()
    yield url
    backend.drop_database(url)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's) for a module's browser tests, shared with the browser tests
    that run next in this process; each test opens its own context (no cookie, no storage)."""
    with headless_chromium() as b:
        yield b


def _uses_a_browser(item: pytest.Item | None) -> bool:
    return item is not None and (
        "browser" in getattr(item, "fixturenames", ())
        or item.get_closest_marker("browser") is not None
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Once a module is done (its fixtures torn down), close the shared Chromium unless the next
    module's test uses one: that test may use asyncio, which Playwright's sync API blocks. Never
    within a module: its `browser` fixture holds the Chromium until the module ends."""
    yield
    if nextitem is None or (
        nextitem.module is not getattr(item, "module", None) and not _uses_a_browser(nextitem)
    ):
        close_chromium()


@pytest.fixture
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A private anonymous Mosquitto on a free port (MQTT 3.1.1 and 5)."""
    m = Mosquitto(tmp_path_factory.mktemp("mosquitto"), port=free_port())
    m.start()
    yield m
    m.stop()
