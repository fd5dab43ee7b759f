"""docker-compose.yml agrees with the settings the code reads (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pisman.embedded import MAX_PACKET_SIZE, MESSAGE_SIZE_LIMIT
from pisman.settings import PROJECT_ROOT, Settings

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ("init", "ingest", "api", "dashboard")
# Variables read by the container images themselves, not by our settings.
IMAGE_VARIABLES = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"}


def test_compose_has_every_service_with_a_pinned_image() -> None:
    assert set(SERVICES) >= {"db", "broker", "init", "ingest", "api", "dashboard"}
    assert re.fullmatch(r"timescale/timescaledb:2\.28\.\d+-pg1[56]", SERVICES["db"]["image"])
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


def _published(service: str) -> dict[int, str]:
    """Container port -> host address it is published on ("" for every interface)."""
    out: dict[int, str] = {}
    for spec in SERVICES[service].get("ports", []):
        parts = str(spec).split(":")
        out[int(parts[-1])] = parts[0] if len(parts) == 3 else ""
    return out


def test_published_ports_match_the_settings() -> None:
    def published(service: str) -> set[int]:
        return set(_published(service))

    assert Settings.model_fields["API_PORT"].default in published("api")
    assert int(SERVICES["api"]["environment"]["API_PORT"]) in published("api")
    assert int(SERVICES["dashboard"]["environment"]["DASHBOARD_PORT"]) in published("dashboard")
    assert Settings.model_fields["DASHBOARD_PORT"].default in published("dashboard")
    assert int(SERVICES["ingest"]["environment"]["INGEST_METRICS_PORT"]) in published("ingest")
    assert published("broker") == {8883}
    dashboard_api = SERVICES["dashboard"]["environment"]["API_URL"]
    assert dashboard_api.endswith(f":{SERVICES['api']['environment']['API_PORT']}")


def test_long_running_services_have_health_checks_and_data_has_volumes() -> None:
    for name in ("db", "broker", "ingest", "api", "dashboard"):
        assert "healthcheck" in SERVICES[name], name
    assert any("/var/lib/postgresql/data" in v for v in SERVICES["db"]["volumes"])
    assert any("/mosquitto/data" in v for v in SERVICES["broker"]["volumes"])
    assert set(COMPOSE["volumes"]) >= {"pgdata", "broker-data", "broker-auth"}


def _broker_conf_path() -> Path:
    mounts = [v.split(":")[0] for v in SERVICES["broker"]["volumes"]]
    return PROJECT_ROOT / next(m for m in mounts if m.endswith("mosquitto.conf"))


def _broker_conf() -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Global options, and each listener's options by its port (a listener's own options
    follow its `listener` line; Mosquitto applies the global ones wherever they stand)."""
    listener_options = {
        "protocol",
        "use_username_as_clientid",
        "certfile",
        "keyfile",
        "cafile",
        "tls_version",
        "require_certificate",
    }
    options: dict[str, str] = {}
    listeners: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in _broker_conf_path().read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        key, value = line.split(None, 1)
        if key == "listener":
            current = listeners.setdefault(value.split()[0], {"address": value})
        elif key in listener_options:
            assert current is not None, f"{key} before any listener"
            current[key] = value
        else:
            options[key] = value
    return options, listeners


def test_broker_config_requires_authentication_and_room_for_delayed_acks() -> None:
    conf, _ = _broker_conf()
    assert conf["allow_anonymous"] == "false"
    assert conf["persistence"] == "true"
    assert int(conf["max_inflight_messages"]) >= 100
    assert int(conf["max_queued_messages"]) >= 100_000
    init_env = SERVICES["init"]["environment"]
    assert conf["password_file"] == init_env["MOSQUITTO_PASSWORD_FILE"]
    assert conf["acl_file"] == init_env["MOSQUITTO_ACL_FILE"]


def test_only_the_tls_port_of_the_broker_is_published_and_the_rest_only_on_localhost() -> None:
    assert _published("broker") == {8883: ""}  # devices on the internet, over TLS only
    for name in ("api", "dashboard", "ingest"):
        ports = _published(name)
        assert ports and all(host == "127.0.0.1" for host in ports.values()), name
    assert "ports" not in SERVICES["db"] and "ports" not in SERVICES["init"]


def test_the_broker_serves_tls_with_the_generated_certificate_and_binds_client_ids() -> None:
    _, listeners = _broker_conf()
    assert set(listeners) == {"1883", "8883"}
    for port, listener in listeners.items():
        assert listener.get("use_username_as_clientid") == "true", port
    tls = listeners["8883"]
    certs_mount = next(v for v in SERVICES["broker"]["volumes"] if ":/mosquitto/certs" in v)
    assert tls["certfile"] == "/mosquitto/certs/server.crt"
    assert tls["keyfile"] == "/mosquitto/certs/server.key"
    assert "certfile" not in listeners["1883"]
    # init makes those files in the same volume on first run.
    init = SERVICES["init"]
    assert certs_mount.split(":")[0] + ":/mosquitto/certs" in init["volumes"]
    assert "--tls-dir /mosquitto/certs" in " ".join(init["command"])
    assert "broker" in init["environment"]["PISMAN_BROKER_CERT_HOSTS"].split()
    assert set(COMPOSE["volumes"]) >= {"broker-certs"}


def test_the_broker_bounds_message_sizes_like_every_broker_we_configure() -> None:
    conf, _ = _broker_conf()
    assert int(conf["message_size_limit"]) == MESSAGE_SIZE_LIMIT == 262144
    assert int(conf["max_packet_size"]) == MAX_PACKET_SIZE


def test_the_broker_does_not_run_as_root_and_init_hands_it_its_volumes() -> None:
    broker = SERVICES["broker"]
    assert broker["user"] == "1883:1883"
    command = " ".join(SERVICES["init"]["command"])
    for volume in ("/mosquitto/auth", "/mosquitto/data", "/mosquitto/certs"):
        assert volume in command.split("chown -R 1883:1883", 1)[1], volume
        assert any(v.endswith(volume) for v in SERVICES["init"]["volumes"]), volume


def test_ingest_connects_with_its_own_account_as_its_client_id() -> None:
    env = {**COMPOSE["x-app-env"], **SERVICES["ingest"]["environment"]}
    env.pop("<<", None)
    url = env["MQTT_URL"].replace("${INGEST_MQTT_PASSWORD:?set INGEST_MQTT_PASSWORD in .env}", "pw")
    settings = Settings(MQTT_URL=url)
    assert settings.mqtt.host == "broker" and settings.mqtt.port == 1883
    assert settings.INGEST_CLIENT_ID == settings.mqtt.username == "pisman-ingest-1"
    assert "INGEST_CLIENT_ID" not in env or env["INGEST_CLIENT_ID"] == settings.mqtt.username
    assert SERVICES["ingest"]["environment"]["INGEST_METRICS_HOST"] == "0.0.0.0"


def test_the_api_runs_several_workers_so_heavy_reads_cannot_starve_health_checks() -> None:
    env = SERVICES["api"]["environment"]
    assert Settings(API_WORKERS=int(env["API_WORKERS"])).API_WORKERS >= 2


def test_the_image_carries_the_backup_tools_of_the_databases_major() -> None:
    """`pisman backup`/`restore` run pg_dump/pg_restore: the app image must ship the client of
    the compose database's PostgreSQL major (pg_dump refuses a newer server)."""
    db_major = re.fullmatch(r"timescale/timescaledb:[\d.]+-pg(\d+)", SERVICES["db"]["image"])
    assert db_major is not None
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert f"postgresql-client-{db_major.group(1)}" in dockerfile


def test_pre_commit_runs_the_checks_that_run_test_starts_with() -> None:
    """The pre-commit hooks are ./run test's lint steps, with the project's virtualenv."""
    config = yaml.safe_load((PROJECT_ROOT / ".pre-commit-config.yaml").read_text())
    entries = [hook["entry"] for repo in config["repos"] for hook in repo["hooks"]]
    run_script = (PROJECT_ROOT / "run").read_text()
    for step in ("ruff check", "ruff format --check", "mypy"):
        assert any(e.startswith(f".venv/bin/{step}") for e in entries), step
        assert f'"$VENV/bin/{step.split()[0]}"' in run_script
