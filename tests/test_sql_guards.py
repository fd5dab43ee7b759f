"""The TimescaleDB path cannot rot silently: every Timescale statement is guarded and parses."""

from __future__ import annotations

import re

import pglast
import psycopg
import pytest

from pisman.settings import PROJECT_ROOT
from tests.support.sqlguard import check_sql, timescale_statements

SQL_FILES = sorted((PROJECT_ROOT / "sql").glob("*.sql"))


@pytest.mark.parametrize("path", SQL_FILES, ids=lambda p: p.name)
def test_every_timescale_statement_is_guarded_and_parses(path) -> None:
    assert check_sql(path.name, path.read_text()) == []


def test_the_timescale_path_creates_hypertables_aggregates_compression() -> None:
    statements = "\n".join(s for p in SQL_FILES for s in timescale_statements(p.read_text()))
    for expected in (
        "create_hypertable('weighing'",
        "create_hypertable('bin_reading'",
        "timescaledb.continuous",
        "timescaledb.materialized_only = false",
        "add_continuous_aggregate_policy('weighing_hourly'",
        "add_compression_policy('weighing'",
        "add_retention_policy('bin_reading'",
    ):
        assert expected in statements


@pytest.mark.parametrize(
    "bad_sql",
    [
        "SELECT create_hypertable('weighing', by_range('ts'));",
        "DO $$ BEGIN EXECUTE $ts$ SELECT create_hypertable('w', by_range('ts')) $ts$; END $$;",
        "DO $$ BEGIN IF NOT pisman_has_timescale() THEN EXECUTE $ts$ SELECT add_retention_policy('w', INTERVAL '1 day') $ts$; END IF; END $$;",
        "DO $$ BEGIN IF pisman_has_timescale() THEN NULL; ELSE EXECUTE $ts$ SELECT time_bucket('1 day', now()) $ts$; END IF; END $$;",
        "DO $$ BEGIN IF pisman_has_timescale() THEN EXECUTE $ts$ CREATE MATERIALIZED VIEW v WITH (timescaledb.continuous AS SELECT 1 $ts$; END IF; END $$;",
        "DO $$ BEGIN CREATE EXTENSION IF NOT EXISTS timescaledb; END $$;",
    ],
    ids=["top-level", "no-if", "negated-if", "else-branch", "syntax-error", "extension-undetected"],
)
def test_guard_check_catches_unguarded_or_broken_timescale_sql(bad_sql: str) -> None:
    assert check_sql("bad.sql", bad_sql) != []


def _cagg_columns(sql: str, view: str) -> list[str]:
    for stmt in timescale_statements(sql):
        if f"CREATE MATERIALIZED VIEW {view}" in stmt:
            select = pglast.parse_sql(re.sub(r"%[LIs]", "'x'", stmt))[0].stmt.query
            return [t.name or t.val.fields[-1].sval for t in select.targetList]
    raise AssertionError(f"no continuous aggregate {view}")


@pytest.mark.parametrize("view", ["weighing_hourly", "weighing_daily", "bin_hourly"])
def test_plain_rollup_tables_have_the_continuous_aggregates_columns(db_url: str, view: str) -> None:
    rollups = (PROJECT_ROOT / "sql" / "004_rollups.sql").read_text()
    with psycopg.connect(db_url) as conn:
        plain = [
            r[0]
            for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (view,),
            )
        ]
    assert plain == _cagg_columns(rollups, view)
