"""Provisioning simulated devices: registry rows, passwords, and the 0600 credentials file."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg
from pydantic import BaseModel

from pisman import devices as registry
from pisman.citydata import City, load_city
from pisman.domain import DeviceKind
from simulators.devices import city_devices


class GatewayCredentials(BaseModel):
    """The gateway service account that publishes for many devices."""

    username: str
    password: str


class Credentials(BaseModel):
    """What the credentials file holds: device_id → password, plus the gateway account."""

    city_id: str
    devices: dict[str, str]
    gateway: GatewayCredentials | None = None


class CredentialsError(Exception):
    """The credentials file is missing or unreadable; str() names it."""


@dataclass(frozen=True, slots=True)
class ProvisionResult:
    """What provisioning did."""

    created: int
    reused: int
    rotated: int
    gateway: str | None
    city_summary: str


def read_credentials(path: Path) -> Credentials:
    """Read a credentials file written by `pisman simulate provision`."""
    try:
        return Credentials.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CredentialsError(
            f"no credentials file {path}; run `pisman simulate provision` first"
        ) from None
    except (OSError, ValueError) as exc:
        raise CredentialsError(
            f"credentials file {path} is unreadable: {str(exc).splitlines()[0]}"
        ) from None


def write_credentials(path: Path, creds: Credentials) -> None:
    """Write the file atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(creds.model_dump_json(indent=1) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


DEVICE_HASHES = "SELECT device_id, password_hash FROM device WHERE city_id = %s"
GATEWAY_HASH = "SELECT password_hash FROM service_account WHERE username = %s"


def provision(
    conn: psycopg.Connection, city: City, *, credentials_path: Path, gateway_user: str | None
) -> ProvisionResult:
    """Load the city, create every simulated device (reusing known passwords), write the credentials file."""
    summary = load_city(conn, city)
    old = read_credentials(credentials_path) if credentials_path.exists() else None
    known = old.devices if old and old.city_id == city.city.id else {}
    hashes: dict[str, str] = dict(conn.execute(DEVICE_HASHES, (city.city.id,)).fetchall())
    interval = city.simulation.bins.interval_s if city.simulation else None
    passwords: dict[str, str] = {}
    created = reused = rotated = 0
    with conn.transaction():
        for dev in city_devices(city):
            pw = known.get(dev.device_id)
            stored = hashes.get(dev.device_id)
            if stored is None:
                _, pw = registry.add_device(
                    conn,
                    device_id=dev.device_id,
                    site_id=dev.site_id,
                    kind=dev.kind.value,
                    reporting_interval_s=interval if dev.kind == DeviceKind.BIN_SENSOR else None,
                    password=pw,
                )
                created += 1
            elif pw is not None and registry.verify_password(pw, stored):
                reused += 1
            else:
                pw = registry.rotate_password(conn, device_id=dev.device_id)
                rotated += 1
            passwords[dev.device_id] = pw
        gateway = None
        if gateway_user:
            pw = (
                old.gateway.password
                if old and old.gateway and old.gateway.username == gateway_user
                else None
            )
            row = conn.execute(GATEWAY_HASH, (gateway_user,)).fetchone()
            if pw is None or row is None or not registry.verify_password(pw, row[0]):
                pw = registry.new_password()
            registry.set_service_account(
                conn, username=gateway_user, role="gateway", password=pw, city_id=city.city.id
            )
            gateway = GatewayCredentials(username=gateway_user, password=pw)
    conn.commit()
    write_credentials(
        credentials_path, Credentials(city_id=city.city.id, devices=passwords, gateway=gateway)
    )
    return ProvisionResult(created, reused, rotated, gateway_user, summary)
