"""The Prometheus alerts in deploy/prometheus: valid, unit-tested, and built on metrics that exist."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from psycopg import sql

from pisman.settings import PROJECT_ROOT
from tests.support.broker import Mosquitto, free_port
from tests.support.databases import Backend
from tests.support.ingest_world import (
    bin_reading,
    dumps,
    publish_all,
    publisher,
    running_ingest,
    seed_city,
    settings_for,
    wait_for,
    weighing,
)

RULES_DIR = PROJECT_ROOT / "deploy" / "prometheus"
ALERTS = RULES_DIR / "alerts.yml"
# A selector of one of our metrics: name, then optional {label="value", ...}.
SELECTOR = re.compile(r"\b(pisman_[a-z0-9_]+)\s*(?:\{([^}]*)\})?")
# Series the API exposes only for a database with TimescaleDB (its background jobs).
TIMESCALEDB_METRICS = "pisman_timescaledb_"
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"')


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("promtool is missing: install Debian's prometheus package (./run test does)")
    return found


def _alert_rules() -> list[dict[str, Any]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def _promtool_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120
    )


def test_alert_rules_and_scrape_config_pass_promtool_check() -> None:
    rules = _promtool_run("check", "rules", "alerts.yml")
    assert rules.returncode == 0, rules.stdout + rules.stderr
    config = _promtool_run("check", "config", "prometheus.yml")
    assert config.returncode == 0, config.stdout + config.stderr


def test_alert_rules_pass_their_promtool_unit_tests() -> None:
    result = _promtool_run("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test_that_sees_it_fire() -> None:
    tests = yaml.safe_load((RULES_DIR / "alerts_test.yml").read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    names = [rule["alert"] for rule in _alert_rules()]
    assert len(names) == len(set(names))
    assert set(names) - fired == set()
    expected = {
        "PismanIngestDown",
        "PismanIngestLagging",
        "PismanQuarantineRateJump",
        "PismanIngestNoCommit",
        "PismanBinReadingsSilent",
        "PismanWeighingsSilent",
        "PismanDatabaseUnreachable",
        "PismanBrokerUnreachable",
        "PismanTimescaleJobFailing",
        "PismanTimescaleJobOverdue",
        "PismanTimescaleJobsUnchecked",
    }
    assert expected <= set(names)


def _samples(exposition: str) -> list[tuple[str, dict[str, str]]]:
    return [
        (sample.name, dict(sample.labels))
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    ]


def _value(exposition: str, name: str) -> float | None:
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return float(sample.value)
    return None


@pytest.fixture
def ingest_metrics(db_url: str, broker: Mosquitto) -> Iterator[tuple[str, Mosquitto, str]]:
    """A real ingest service serving /metrics, fed a weighing, a bin reading and a bad message."""
    with psycopg.connect(db_url) as conn:
        seed_city(conn)
    port = free_port()
    with running_ingest(settings_for(db_url, broker.url, INGEST_METRICS_PORT=port)):
        pub = publisher(broker.port)
        publish_all(
            pub,
            [
                ("pisman/v1/bank-1/scale-bank-1/weighing", dumps(weighing(1))),
                ("pisman/v1/depot-1/bin-depot-1/bin", dumps(bin_reading(1))),
                ("pisman/v1/bank-1/scale-bank-1/weighing", b"not json"),
            ],
        )
        url = f"http://127.0.0.1:{port}/metrics"
        wait_for(
            lambda: (
                "pisman_ingest_quarantined_total 1.0" in httpx.get(url).text
                and 'pisman_ingest_readings_stored_total{kind="bin"} 1.0' in httpx.get(url).text
            ),
            what="the three messages counted",
        )
        pub.loop_stop()
        pub.disconnect()
        yield url, broker, db_url


def test_every_metric_and_label_in_the_alerts_is_exposed_by_running_services(
    ingest_metrics: tuple[str, Mosquitto, str],
    db_url: str,
    backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.support.api_seed import api_client

    url, _, _ = ingest_metrics
    exposed = _samples(httpx.get(url).text)
    with api_client(db_url, monkeypatch) as (client, _key):
        assert client.get("/healthz").status_code == 200
        exposed += _samples(client.get("/metrics").text)

    used = [
        (match.group(1), match.group(2) or "")
        for rule in _alert_rules()
        for match in SELECTOR.finditer(rule["expr"])
    ]
    assert len(used) >= 10, used
    timescaledb_only = {name for name, _ in used if name.startswith(TIMESCALEDB_METRICS)}
    assert timescaledb_only, "the TimescaleDB job alerts are missing"
    if not backend.is_timescaledb:  # no job series on plain PostgreSQL, by design
        assert not any(sample.startswith(TIMESCALEDB_METRICS) for sample, _ in exposed)
        used = [(name, m) for name, m in used if name not in timescaledb_only]
    for name, matchers in used:
        labelsets = [labels for sample, labels in exposed if sample == name]
        assert labelsets, f"{name} is used in {ALERTS.name} but no service exposes it"
        for label, op, value in MATCHER.findall(matchers):
            if op == "=":
                assert any(ls.get(label) == value for ls in labelsets), (name, label, value)
            else:  # a pattern: at least the label must exist
                assert any(label in ls for ls in labelsets), (name, label)


def _gauge(url: str, name: str) -> float | None:
    return _value(httpx.get(url).text, name)


def test_ingest_metrics_show_losing_and_regaining_the_broker_and_the_database(
    ingest_metrics: tuple[str, Mosquitto, str],
) -> None:
    url, broker, db_url = ingest_metrics
    assert _gauge(url, "pisman_ingest_broker_connected") == 1.0
    assert _gauge(url, "pisman_ingest_database_connected") == 1.0

    broker.stop()
    wait_for(lambda: _gauge(url, "pisman_ingest_broker_connected") == 0.0, what="broker lost")
    broker.start()
    wait_for(
        lambda: _gauge(url, "pisman_ingest_broker_connected") == 1.0,
        timeout=30,
        what="broker regained",
    )

    # The database refuses new connections and drops ingest's: as good as unreachable.
    dbname = str(psycopg.conninfo.conninfo_to_dict(db_url)["dbname"])
    admin = psycopg.conninfo.make_conninfo(db_url, dbname="postgres")
    database = sql.Identifier(dbname)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(database))
        try:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (dbname,),
            )
            wait_for(
                lambda: _gauge(url, "pisman_ingest_database_connected") == 0.0,
                timeout=30,
                what="database lost",
            )
        finally:
            conn.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(database))
    wait_for(
        lambda: _gauge(url, "pisman_ingest_database_connected") == 1.0,
        timeout=30,
        what="database regained",
    )
