"""The device registry: provisioning, credentials, and the broker's password and ACL files."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import signal
from dataclasses import dataclass
from pathlib import Path

import psycopg

from pisman.domain import TOPIC_ROOT, DeviceKind, ReadingKind
from pisman.settings import Settings

# What a device publishes (ReadingKind's values) and the topic where ingest acknowledges commits.
DEVICE_WRITES = tuple(k.value for k in ReadingKind)
ACK_KIND = "ack"
# Mosquitto's "$7$" format: PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt (mosquitto_passwd).
_PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12
DEFAULT_REPORTING_INTERVAL_S = {
    DeviceKind.WEIGHBRIDGE: 3600,
    DeviceKind.PLATFORM_SCALE: 3600,
    DeviceKind.BIN_SENSOR: 300,
}


class RegistryError(Exception):
    """A provisioning request cannot be carried out; str() says why."""


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Hash a password in Mosquitto's password-file format."""
    salt = salt if salt is not None else os.urandom(_SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, _PBKDF2_ITERATIONS)
    return f"$7${_PBKDF2_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether the password matches a "$7$" hash."""
    try:
        _, kind, iterations, salt_b64, digest_b64 = encoded.split("$")
        if kind != "7":
            return False
        salt = base64.b64decode(salt_b64)
        expected = base64.b64decode(digest_b64)
    except ValueError:
        return False
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, int(iterations))
    return hmac.compare_digest(digest, expected)


def new_password() -> str:
    """A fresh random device password (printed once, never stored)."""
    return secrets.token_urlsafe(18)


def device_topic(site_id: str, device_id: str, kind: str) -> str:
    """The topic a device publishes one kind of message on."""
    return f"{TOPIC_ROOT}/{site_id}/{device_id}/{kind}"


@dataclass(frozen=True, slots=True)
class Device:
    """A registered device."""

    device_id: str
    city_id: str
    site_id: str
    kind: str
    reporting_interval_s: int
    active: bool


DEVICE_COLUMNS = "device_id, city_id, site_id, kind, reporting_interval_s, active"


def get_device(conn: psycopg.Connection, *, device_id: str) -> Device | None:
    """One device, or None."""
    row = conn.execute(
        f"SELECT {DEVICE_COLUMNS} FROM device WHERE device_id = %s", (device_id,)
    ).fetchone()
    return Device(*row) if row else None


def list_devices(
    conn: psycopg.Connection, *, city_id: str | None = None, site_id: str | None = None
) -> list[Device]:
    """Devices, filtered by city and site when given, in id order."""
    rows = conn.execute(
        f"SELECT {DEVICE_COLUMNS} FROM device"
        " WHERE (%(city)s::text IS NULL OR city_id = %(city)s)"
        "   AND (%(site)s::text IS NULL OR site_id = %(site)s)"
        " ORDER BY device_id",
        {"city": city_id, "site": site_id},
    ).fetchall()
    return [Device(*r) for r in rows]


def add_device(
    conn: psycopg.Connection,
    *,
    device_id: str,
    site_id: str,
    kind: str,
    reporting_interval_s: int | None = None,
    password: str | None = None,
) -> tuple[Device, str]:
    """Register a device at a site; return it with its password (shown once, stored hashed)."""
    try:
        kind = DeviceKind(kind)
    except ValueError:
        raise RegistryError(
            f"unknown device kind {kind!r}; use one of {', '.join(k.value for k in DeviceKind)}"
        ) from None
    site = conn.execute("SELECT city_id FROM site WHERE site_id = %s", (site_id,)).fetchone()
    if site is None:
        raise RegistryError(f"no site {site_id!r}; load the city file or add the site first")
    if get_device(conn, device_id=device_id) is not None:
        raise RegistryError(f"device {device_id!r} already exists; rotate its password instead")
    if _is_service_account(conn, device_id):
        # One broker account per username: the password file would hold it twice, and the
        # client id (bound to the username) would be a service's.
        raise RegistryError(f"{device_id!r} is a service account's name; choose another device id")
    interval = reporting_interval_s or DEFAULT_REPORTING_INTERVAL_S[kind]
    password = password or new_password()
    try:
        conn.execute(
            "INSERT INTO device (device_id, city_id, site_id, kind, password_hash, reporting_interval_s)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (device_id, site[0], site_id, kind.value, hash_password(password), interval),
        )
    except psycopg.errors.CheckViolation:
        raise RegistryError(
            f"device id {device_id!r} must be lowercase letters, digits, '-' or '_' (at most 64)"
        ) from None
    device = get_device(conn, device_id=device_id)
    assert device is not None
    return device, password


def rotate_password(
    conn: psycopg.Connection, *, device_id: str, password: str | None = None
) -> str:
    """Give a device a new password; return it (shown once)."""
    password = password or new_password()
    cur = conn.execute(
        "UPDATE device SET password_hash = %s, credentials_set_at = now() WHERE device_id = %s",
        (hash_password(password), device_id),
    )
    if cur.rowcount == 0:
        raise RegistryError(f"no device {device_id!r}")
    return password


def set_active(conn: psycopg.Connection, *, device_id: str, active: bool) -> Device:
    """Deactivate a device (out of the broker files, readings quarantined) or reactivate it."""
    cur = conn.execute("UPDATE device SET active = %s WHERE device_id = %s", (active, device_id))
    if cur.rowcount == 0:
        raise RegistryError(f"no device {device_id!r}")
    device = get_device(conn, device_id=device_id)
    assert device is not None
    return device


def _is_service_account(conn: psycopg.Connection, username: str) -> bool:
    row = conn.execute("SELECT 1 FROM service_account WHERE username = %s", (username,)).fetchone()
    return row is not None


def set_service_account(
    conn: psycopg.Connection, *, username: str, role: str, password: str, city_id: str | None = None
) -> None:
    """Create or update a broker account for a service (ingest, gateway, monitor)."""
    if get_device(conn, device_id=username) is not None:
        raise RegistryError(f"{username!r} is a device id; choose another account name")
    conn.execute(
        "INSERT INTO service_account (username, city_id, role, password_hash) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (username) DO UPDATE SET role = EXCLUDED.role, city_id = EXCLUDED.city_id,"
        " password_hash = EXCLUDED.password_hash",
        (username, city_id, role, hash_password(password)),
    )


def render_broker_files(conn: psycopg.Connection) -> tuple[str, str]:
    """The Mosquitto password file and ACL file for every active device and service account."""
    pw_lines: list[str] = []
    acl_lines: list[str] = [
        "# Generated by `pisman devices sync-broker` from the device registry; do not edit."
    ]
    for username, role, pw_hash in conn.execute(
        "SELECT username, role, password_hash FROM service_account ORDER BY username"
    ):
        pw_lines.append(f"{username}:{pw_hash}")
        acl_lines.append(f"\nuser {username}")
        if role == "ingest":
            acl_lines.append(f"topic read {TOPIC_ROOT}/#")
            acl_lines.append(f"topic write {TOPIC_ROOT}/+/+/{ACK_KIND}")  # commit acks
        elif role == "gateway":
            # Publishes for many devices and reads their commit acks; it cannot forge acks.
            acl_lines.extend(
                f"topic write {device_topic('+', '+', kind)}" for kind in DEVICE_WRITES
            )
            acl_lines.append(f"topic read {device_topic('+', '+', ACK_KIND)}")
        else:
            acl_lines.append(f"topic read {TOPIC_ROOT}/+/+/status")
    for device_id, site_id, pw_hash in conn.execute(
        "SELECT device_id, site_id, password_hash FROM device WHERE active ORDER BY device_id"
    ):
        pw_lines.append(f"{device_id}:{pw_hash}")
        # A device may publish only its own message kinds under its own site and id, and read
        # only its own commit acks. Explicit topics, not .../#: Mosquitto cannot exclude the ack
        # topic from a wildcard, and a device must not forge its acks.
        acl_lines.append(f"\nuser {device_id}")
        acl_lines.extend(
            f"topic write {device_topic(site_id, device_id, kind)}" for kind in DEVICE_WRITES
        )
        acl_lines.append(f"topic read {device_topic(site_id, device_id, ACK_KIND)}")
    return "\n".join(pw_lines) + "\n", "\n".join(acl_lines) + "\n"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o600)
    if path.exists() and os.geteuid() == 0:
        # Run as root (compose's init): keep the owner the broker reads it as (mosquitto, 1883).
        st = path.stat()
        os.chown(tmp, st.st_uid, st.st_gid)
    os.replace(tmp, path)


def sync_broker_if_configured(conn: psycopg.Connection, settings: Settings) -> str:
    """After a registry change: rewrite the broker files and signal the broker when the files
    are configured (MOSQUITTO_PASSWORD_FILE and MOSQUITTO_ACL_FILE); say what was done, or what
    the operator must do. The one place every writer of the registry (CLI, API, simulator
    provisioning) goes through."""
    if not (settings.MOSQUITTO_PASSWORD_FILE and settings.MOSQUITTO_ACL_FILE):
        return (
            "broker files not configured (MOSQUITTO_PASSWORD_FILE, MOSQUITTO_ACL_FILE): run "
            "`pisman devices sync-broker` where they live and reload the broker"
        )
    signalled = write_broker_files(
        conn,
        password_file=settings.MOSQUITTO_PASSWORD_FILE,
        acl_file=settings.MOSQUITTO_ACL_FILE,
        pid_file=settings.MOSQUITTO_PID_FILE,
    )
    return f"wrote {settings.MOSQUITTO_PASSWORD_FILE} and {settings.MOSQUITTO_ACL_FILE}; " + (
        "broker reloaded"
        if signalled
        else "no broker signalled (set MOSQUITTO_PID_FILE, or send the broker SIGHUP)"
    )


def write_broker_files(
    conn: psycopg.Connection, *, password_file: Path, acl_file: Path, pid_file: Path | None = None
) -> bool:
    """Write both files and signal the broker to reload them; True when a broker was signalled."""
    passwords, acl = render_broker_files(conn)
    _write_atomically(password_file, passwords)
    _write_atomically(acl_file, acl)
    if pid_file is None or not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
    except (ValueError, ProcessLookupError, PermissionError):
        return False
    return True
