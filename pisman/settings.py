"""Settings from the environment (and an optional .env file): the only reader of os.environ."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class MqttEndpoint:
    """A broker address parsed from MQTT_URL."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None

    def url(self, *, with_credentials: bool = False) -> str:
        """The endpoint as a URL; credentials only when asked for."""
        scheme = "mqtts" if self.tls else "mqtt"
        auth = ""
        if with_credentials and self.username:
            auth = self.username + (f":{self.password}" if self.password else "") + "@"
        return f"{scheme}://{auth}{self.host}:{self.port}"


def parse_mqtt_url(url: str) -> MqttEndpoint:
    """Parse mqtt://user:pass@host:port (mqtts:// for TLS); raise ValueError with the reason."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ValueError(f"scheme must be mqtt:// or mqtts://, got {parts.scheme or 'none'!r}")
    if not parts.hostname:
        raise ValueError("no host in the URL")
    tls = parts.scheme in ("mqtts", "ssl")
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError as exc:
        raise ValueError(f"bad port: {exc}") from None
    return MqttEndpoint(
        host=parts.hostname,
        port=port,
        tls=tls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


class Settings(BaseSettings):
    """Every setting the services read, with its environment variable name."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=True
    )

    DATABASE_URL: str = Field(
        "postgresql://postgres@127.0.0.1:5432/pisman",
        description="PostgreSQL/TimescaleDB connection URL.",
    )
    MQTT_URL: str = Field(
        "mqtt://127.0.0.1:1883",
        description="Broker URL for the ingest service: mqtt[s]://user:password@host:port.",
    )
    MQTT_CA_FILE: Path | None = Field(None, description="CA bundle for mqtts:// brokers.")
    PISMAN_CITY: str = Field("bandung", description="The city this process serves by default.")
    PISMAN_CITY_FILE: Path = Field(
        PROJECT_ROOT / "data" / "cities" / "bandung.yaml",
        description="City data file (districts, sites, targets) loaded by `pisman city load`.",
    )
    PISMAN_TIMEZONE: str = Field(
        "Asia/Jakarta", description="Zone that days, weeks and months are counted in."
    )
    PISMAN_TIMESCALE: Literal["auto", "off"] = Field(
        "auto", description="auto: use TimescaleDB when the extension is preloaded; off: never."
    )
    PISMAN_BIN_RETENTION_DAYS: int | None = Field(
        None, ge=450, description="Drop raw bin readings older than this (TimescaleDB only)."
    )
    PISMAN_DATA_DIR: Path = Field(
        PROJECT_ROOT / "var", description="Where embedded servers and generated broker files live."
    )
    PISMAN_SQL_DIR: Path = Field(PROJECT_ROOT / "sql", description="Migration files.")

    API_HOST: str = Field("127.0.0.1", description="Address the API listens on.")
    API_PORT: int = Field(8000, ge=1, le=65535, description="Port the API listens on.")
    API_URL: str = Field("http://127.0.0.1:8000", description="Where the dashboard finds the API.")
    API_MAX_RANGE_DAYS: int = Field(
        1100, ge=1, description="Longest time range one tonnage request may ask for."
    )
    API_WORKERS: int = Field(
        1, ge=1, le=64, description="Worker processes of `pisman api` (2-4 in production)."
    )
    API_STATEMENT_TIMEOUT_S: float = Field(
        15, gt=0, description="SQL statements of a request running longer are cancelled (503)."
    )
    API_POOL_TIMEOUT_S: float = Field(
        3, gt=0, description="Longest wait for a database connection before answering 503."
    )
    API_MAX_HEAVY_QUERIES: int = Field(
        1,
        ge=1,
        description="Tonnage, progress, report and export requests running at once, per process.",
    )
    API_HEAVY_QUEUE_S: float = Field(
        2, ge=0, description="How long a heavy request waits for a free slot before 429."
    )
    API_RATE_LIMIT_PER_MIN: int = Field(
        1200, ge=0, description="Requests per minute per API key and process (burst too); 0: off."
    )
    PISMAN_SESSION_HOURS: float = Field(
        12, gt=0, le=24 * 30, description="A login session ends after this long unused (sliding)."
    )
    PISMAN_PLAN_TIME_LIMIT_S: float = Field(
        20,
        ge=1,
        le=300,
        description="Solver time for one collection plan (all pools together); Bandung's ~260"
        " depots need about 20 s on 2 cores. The dashboard waits this plus 40 s for a plan.",
    )
    DASHBOARD_HOST: str = Field("127.0.0.1", description="Address the dashboard listens on.")
    DASHBOARD_PORT: int = Field(8050, ge=1, le=65535, description="Port the dashboard listens on.")
    DASHBOARD_REFRESH_S: int = Field(10, ge=1, description="Live refresh period of the dashboard.")
    DASHBOARD_SECRET_KEY: str | None = Field(
        None,
        min_length=32,
        description="Signs the dashboard's session cookie (`pisman up` writes one to"
        " var/dashboard-secret when unset).",
    )
    DASHBOARD_COOKIE_SECURE: bool = Field(
        False, description="Mark the session cookie Secure (set it when served over https)."
    )

    INGEST_CLIENT_ID: str = Field(
        "pisman-ingest-1",
        description="Stable MQTT client id (the persistent session's name); default: the"
        " MQTT_URL user, which our brokers use as the client id, else pisman-ingest-1.",
    )
    INGEST_SHARE_GROUP: str | None = Field(
        None, description="Join MQTT 5 shared subscription $share/<group>/... to spread load."
    )
    INGEST_BATCH_SIZE: int = Field(2000, ge=1, description="Flush after this many readings.")
    INGEST_FLUSH_MS: int = Field(100, ge=1, description="...or after this many milliseconds.")
    INGEST_SESSION_EXPIRY_S: int = Field(
        86400, ge=0, description="How long the broker keeps the ingest session while it is away."
    )
    INGEST_METRICS_PORT: int = Field(
        9108, ge=0, le=65535, description="Prometheus /metrics port of ingest (0: off)."
    )
    INGEST_METRICS_HOST: str = Field(
        "127.0.0.1", description="Address ingest's /metrics listens on (0.0.0.0: every interface)."
    )
    INGEST_MAX_FUTURE_S: int = Field(
        300, ge=0, description="Readings stamped further in the future are quarantined."
    )
    INGEST_MAX_MESSAGE_BYTES: int = Field(
        262144,
        ge=1024,
        description="Larger messages are quarantined unread (keep it at the broker's message_size_limit).",
    )
    INGEST_MAX_READINGS: int = Field(
        1000, ge=1, description="A batch holding more readings is quarantined whole."
    )
    INGEST_COMMIT_ACKS: bool = Field(
        True,
        description="After each commit, tell every device what is stored on"
        " pisman/v1/<site>/<device>/ack (docs/protocol.md); off only to measure the cost.",
    )

    MOSQUITTO_PASSWORD_FILE: Path | None = Field(
        None, description="Broker password file generated from the device registry."
    )
    MOSQUITTO_ACL_FILE: Path | None = Field(
        None, description="Broker ACL file generated from the device registry."
    )
    MOSQUITTO_PID_FILE: Path | None = Field(
        None, description="PID file of the broker to signal (SIGHUP) after regenerating them."
    )

    PISMAN_UP_MQTT_PORT: int = Field(
        1884,
        ge=1,
        le=65535,
        description="Port of the broker `pisman up` starts when MQTT_URL is unset.",
    )
    PISMAN_UP_MQTTS_PORT: int = Field(
        8884, ge=1, le=65535, description="TLS port of the broker `pisman up` starts (devices)."
    )
    PISMAN_UP_MQTTS_HOST: str = Field(
        "127.0.0.1",
        description="Address that TLS listener binds to (0.0.0.0 lets devices on the network in).",
    )
    PISMAN_BROKER_CERT_HOSTS: str = Field(
        "",
        description="Names or IPs devices reach the broker by (comma-separated), added to the"
        " generated server certificate besides localhost and 127.0.0.1.",
    )

    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )

    @field_validator("DATABASE_URL")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must start with postgresql://")
        return value

    @field_validator("MQTT_URL")
    @classmethod
    def _mqtt_url(cls, value: str) -> str:
        parse_mqtt_url(value)
        return value

    @model_validator(mode="after")
    def _ingest_client_id_is_the_mqtt_user(self) -> Settings:
        # Our brokers bind client ids to usernames (use_username_as_clientid): the session is
        # named after the MQTT_URL user whatever id ingest sends, so the two must agree.
        user = parse_mqtt_url(self.MQTT_URL).username
        if user is None or user == self.INGEST_CLIENT_ID:
            return self
        if "INGEST_CLIENT_ID" not in self.model_fields_set:
            self.INGEST_CLIENT_ID = user
        elif self.INGEST_SHARE_GROUP:
            raise ValueError(
                f"INGEST_CLIENT_ID {self.INGEST_CLIENT_ID!r} is not the MQTT_URL user {user!r}: the"
                " broker names each session after its user, so ingest processes sharing"
                " INGEST_SHARE_GROUP need one broker account each (user = INGEST_CLIENT_ID)"
            )
        return self

    @field_validator("PISMAN_TIMEZONE")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Asia/Jakarta)"
            ) from None
        return value

    @field_validator("API_URL")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @property
    def mqtt(self) -> MqttEndpoint:
        """The broker endpoint."""
        return parse_mqtt_url(self.MQTT_URL)

    @property
    def tz(self) -> ZoneInfo:
        """The city's zone."""
        return ZoneInfo(self.PISMAN_TIMEZONE)


class SettingsError(Exception):
    """A setting is invalid; str() is one line naming the variable."""


def describe_validation_error(exc: ValidationError) -> str:
    """One line per bad variable: NAME: what is wrong (got 'value')."""
    lines = []
    for err in exc.errors():
        name = ".".join(str(p) for p in err["loc"]) or "settings"
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        secret = any(word in name for word in ("URL", "KEY", "PASSWORD"))
        shown = f" (got {got!r})" if isinstance(got, str | int | float) and not secret else ""
        lines.append(
            f"invalid setting {name}: {msg}{shown}" if err["loc"] else f"invalid settings: {msg}"
        )
    return "; ".join(lines)


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read once; raises SettingsError with a one-line message."""
    try:
        return Settings()
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc)) from None
