"""docker-compose.yml agrees with the settings the code reads (no Docker engine runs here)."""

from __future__ import annotations

import re

import yaml

from pisman.settings import PROJECT_ROOT, Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("init", "ingest", "api", "dashboard")
# Variables read by the container images themselves, not by our settings.
IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def test_compose_has_every_service_with_a_pinned_image() -> None:
    assert set(SERVICES) >= {"db", "broker", "init", "ingest", "api", "dashboard"}
    assert re.fullmatch(r"timescale/timescaledb:\d+\.\d+\.\d+-pg\d+", SERVICES["db"]["image"])
    assert re.fullmatch(r"eclipse-mosquitto:\d+\.\d+\.\d+", SERVICES["broker"]["image"])
    for name in ("ingest", "api", "dashboard"):
        assert SERVICES[name]["image"] == SERVICES["init"]["image"]  # one Dockerfile
    assert SERVICES["init"]["build"] == "."
    assert (PROJECT_ROOT / "Dockerfile").exists()


def test_every_environment_variable_is_a_setting_the_code_reads() -> None:
    fields = set(Settings.model_fields)
    for name, service in SERVICES.items():
        env = service.get("environment", {})
        unknown = set(env) - fields - IMAGE_VARIABLES - {"<<"}
        assert not unknown, f"{name} sets variables no code reads: {sorted(unknown)}"
    for name in APP_SERVICES:
        env = SERVICES[name]["environment"]
        assert {"DATABASE_URL", "MQTT_URL", "PISMAN_CITY", "PISMAN_TIMEZONE"} <= set(env), name


def test_published_ports_match_the_settings() -> None:
    def published(service: str) -> set[int]:
        return {int(p.split(":")[-1]) for p in SERVICES[service].get("ports", [])}

    assert Settings.model_fields["API_PORT"].default in published("api")
    assert int(SERVICES["api"]["environment"]["API_PORT"]) in published("api")
    assert int(SERVICES["dashboard"]["environment"]["DASHBOARD_PORT"]) in published("dashboard")
    assert Settings.model_fields["DASHBOARD_PORT"].default in published("dashboard")
    assert int(SERVICES["ingest"]["environment"]["INGEST_METRICS_PORT"]) in published("ingest")
    assert 1883 in published("broker")
    dashboard_api = SERVICES["dashboard"]["environment"]["API_URL"]
    assert dashboard_api.endswith(f":{SERVICES['api']['environment']['API_PORT']}")


def test_long_running_services_have_health_checks_and_data_has_volumes() -> None:
    for name in ("db", "broker", "ingest", "api", "dashboard"):
        assert "healthcheck" in SERVICES[name], name
    assert any("/var/lib/postgresql/data" in v for v in SERVICES["db"]["volumes"])
    assert any("/mosquitto/data" in v for v in SERVICES["broker"]["volumes"])
    assert set(COMPOSE["volumes"]) >= {"pgdata", "broker-data", "broker-auth"}


def test_broker_config_requires_authentication_and_room_for_delayed_acks() -> None:
    mounts = [v.split(":")[0] for v in SERVICES["broker"]["volumes"]]
    conf_path = PROJECT_ROOT / next(m for m in mounts if m.endswith("mosquitto.conf"))
    conf = dict(
        line.split(None, 1)
        for line in conf_path.read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert conf["allow_anonymous"] == "false"
    assert conf["persistence"] == "true"
    assert int(conf["max_inflight_messages"]) >= 100
    assert int(conf["max_queued_messages"]) >= 100_000
    init_env = SERVICES["init"]["environment"]
    assert conf["password_file"] == init_env["MOSQUITTO_PASSWORD_FILE"]
    assert conf["acl_file"] == init_env["MOSQUITTO_ACL_FILE"]
