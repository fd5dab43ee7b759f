"""The database backends the suite runs on (plain PostgreSQL and TimescaleDB) and throwaway databases on them."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import errors, sql

# CREATE DATABASE ... TEMPLATE fails while anyone (on TimescaleDB: its background workers)
# is connected to the template; they come and go, so the copy is retried for this long.
TEMPLATE_BUSY_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Backend:
    """One PostgreSQL server the suite runs database tests on, reached through its admin URL."""

    name: str  # "postgresql" or "timescaledb": the storage the migrations record
    admin_url: str

    @property
    def is_timescaledb(self) -> bool:
        """Whether this server preloads TimescaleDB (so the schema takes the TimescaleDB path)."""
        return self.name == "timescaledb"

    def url_for(self, dbname: str) -> str:
        """The admin URL pointed at another database (a URL, as DATABASE_URL must be)."""
        return urlunsplit(urlsplit(self.admin_url)._replace(path=f"/{dbname}"))

    def create_database(self, *, template: str | None = None, prefix: str = "pisman_t") -> str:
        """Create a uniquely named database (optionally a copy of a template); return its URL."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)
            )
        deadline = time.monotonic() + TEMPLATE_BUSY_TIMEOUT_S
        pause = 0.05
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            while True:
                try:
                    conn.execute(stmt)
                    break
                except errors.ObjectInUse:  # "source database ... is being accessed by other users"
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(pause)
                    pause = min(pause * 2, 1.0)
        return self.url_for(name)

    def drop_database(self, url: str) -> None:
        """Drop a test database, disconnecting whoever is still on it."""
        name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def seal_template(self, url: str) -> str:
        """Close a database to connections so it can be copied at any time; return its name.

        TimescaleDB's background workers connect to every database that allows connections,
        and a template with anyone on it cannot be copied.
        """
        name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(
                    sql.Identifier(name)
                )
            )
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        return name

    def seeded_template(self, template: str, seed: Callable[[str], object]) -> str:
        """A sealed copy of template after seed(url) ran on it; return its name.

        For a module whose tests each need a fresh database with the same expensive seed (users
        with Argon2 hashes, a city, weighings): seed once, then create_database(template=...)
        per test. Drop it with drop_database(url_for(name)).
        """
        url = self.create_database(template=template, prefix="pisman_tpl")
        try:
            seed(url)
        except BaseException:
            self.drop_database(url)
            raise
        return self.seal_template(url)

    def problem(self) -> str | None:
        """Why this server cannot serve as this backend, or None when it can."""
        try:
            with psycopg.connect(self.admin_url, connect_timeout=3) as conn:
                row = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
        except psycopg.OperationalError as exc:
            return f"{self.name} is not reachable at {self.admin_url}: {exc}".strip()
        preloads = "timescaledb" in (row[0] if row else "")
        if preloads != self.is_timescaledb:
            return (
                f"the server at {self.admin_url} {'preloads' if preloads else 'does not preload'}"
                f" timescaledb, so it cannot serve as the {self.name} backend"
            )
        return None


def lock_waiters(db_url: str) -> int:
    """How many sessions on this database wait for a lock right now (a blocked writer shows
    here, so a test can wait for "blocked" instead of sleeping)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


BACKENDS = (
    Backend(
        "postgresql",
        os.environ.get("PISMAN_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
    ),
    Backend(
        "timescaledb",
        os.environ.get(
            "PISMAN_TEST_TSDB_ADMIN_URL", "postgresql://postgres@127.0.0.1:5433/postgres"
        ),
    ),
)
PLAIN = BACKENDS[0]
