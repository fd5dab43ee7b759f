"""Command-line entry for the api component: `pisman api` and `pisman keys add|list|revoke`."""

from __future__ import annotations

import socket
import sys

import click

from pisman.clierrors import Choice, CommandFailed, Group
from pisman.domain import Role


@click.command("api", help="serve the HTTP API (uvicorn on API_HOST:API_PORT)")
@click.option("--host", default=None, help="override API_HOST")
@click.option("--port", type=int, default=None, help="override API_PORT")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    metavar="N",
    help="worker processes (override API_WORKERS; 2-4 in production)",
)
def cmd_api(host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the API with uvicorn on API_HOST:API_PORT (fails fast when the database is unreachable)."""
    import uvicorn

    from api.app import create_app
    from pisman import db
    from pisman.logs import setup_logging
    from pisman.settings import get_settings

    s = get_settings()
    setup_logging(s.LOG_LEVEL)
    # DatabaseUnavailable or MigrationError: one line, exit status 1 (pisman.clierrors).
    db.require_current_schema(s.DATABASE_URL, s.PISMAN_SQL_DIR)
    host = host or s.API_HOST
    port = port or s.API_PORT
    workers = workers or s.API_WORKERS
    print(
        f"pisman api on http://{host}:{port} (docs at /docs), {workers} worker(s)", file=sys.stderr
    )
    config = uvicorn.Config(
        f"{create_app.__module__}:{create_app.__name__}",
        factory=True,
        host=host,
        port=port,
        log_level=s.LOG_LEVEL.lower(),
        access_log=False,
        workers=workers,
    )
    if workers == 1:
        server = uvicorn.Server(config)
        server.run()
        if not server.started:  # uvicorn logged why (e.g. the port is taken)
            raise CommandFailed(f"the API did not start on {host}:{port} (see the log above)")
        return
    # Several processes: one slow request's Python work cannot stall every other request. Each
    # worker builds its own app (pools, limits) from the same environment.
    from uvicorn.supervisors import Multiprocess

    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        raise CommandFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    Multiprocess(config, sockets=[sock]).run()


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket the workers share, made as TCP explicitly.

    uvicorn's own (for --workers) is made with protocol 0, and asyncio sets TCP_NODELAY only on
    sockets whose protocol is TCP: without it Nagle's algorithm meets the client's delayed ACK
    and every answer on a kept-alive connection waits about 40 ms.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


@click.group("keys", cls=Group, help="API keys: add, list, revoke")
def keys_group() -> None:
    """`pisman keys ACTION`."""


@keys_group.command("add", help="create a key; prints it once")
@click.option("--role", required=True, type=Choice([r.value for r in Role]))
@click.option("--name", required=True, help="who or what uses the key (e.g. dashboard)")
@click.option("--city", default=None, help="limit the key to one city (default: every city)")
def cmd_keys_add(role: str, name: str, city: str | None) -> None:
    """Create an API key and print it once (an unknown city: ApiKeyError, exit 2)."""
    from pisman import db, keys
    from pisman.settings import get_settings

    with db.connect(get_settings().DATABASE_URL) as conn:
        plain = keys.create_key(conn, role=role, name=name, city_id=city)
    key_id = keys.split_key(plain)
    print(f"API key {key_id} ({role}) for {name}" + (f", city {city}" if city else ""))
    print(f"  {plain}")
    print("  shown once; only its SHA-256 is stored. Send it as the X-API-Key header.")


@keys_group.command("list", help="list keys")
def cmd_keys_list() -> None:
    """List API keys (never their secrets)."""
    from pisman import db, keys
    from pisman.settings import get_settings

    with db.connect(get_settings().DATABASE_URL) as conn:
        rows = keys.list_keys(conn)
    print(
        f"{'key_id':<10} {'role':<8} {'city':<12} {'created':<20} {'last used':<20} {'state':<8} name"
    )
    for k in rows:
        created = k.created_at.strftime("%Y-%m-%d %H:%M") if k.created_at else ""
        used = k.last_used_at.strftime("%Y-%m-%d %H:%M") if k.last_used_at else "never"
        state = "revoked" if k.revoked_at else "active"
        print(
            f"{k.key_id:<10} {k.role.value:<8} {k.city_id or '*':<12} {created:<20} {used:<20} {state:<8} {k.name}"
        )
    print(f"{len(rows)} key(s)")


@keys_group.command("revoke", help="revoke a key by its id")
@click.argument("key_id")
def cmd_keys_revoke(key_id: str) -> None:
    """Revoke a key by its id (an unknown id: ApiKeyError, exit 2)."""
    from pisman import db, keys
    from pisman.settings import get_settings

    with db.connect(get_settings().DATABASE_URL) as conn:
        keys.revoke_key(conn, key_id=key_id)
    print(f"revoked key {key_id}")


def register(cli: click.Group) -> None:
    """Add `pisman api` and `pisman keys ...`."""
    cli.add_command(cmd_api)
    cli.add_command(keys_group)
