"""Command-line entry for the api component: `pisman api` and `pisman keys add|list|revoke`."""

from __future__ import annotations

import argparse
import socket
import sys

from pisman.domain import Role


def cmd_api(args: argparse.Namespace) -> int:
    """Serve the API with uvicorn on API_HOST:API_PORT (fails fast when the database is unreachable)."""
    import uvicorn

    from api.app import create_app
    from pisman import db
    from pisman.logs import setup_logging
    from pisman.settings import get_settings

    s = get_settings()
    setup_logging(s.LOG_LEVEL)
    # DatabaseUnavailable or MigrationError: one line, exit status 1.
    db.require_current_schema(s.DATABASE_URL, s.PISMAN_SQL_DIR)
    host = args.host or s.API_HOST
    port = args.port or s.API_PORT
    workers = args.workers or s.API_WORKERS
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
        return 0 if server.started else 1
    # Several processes: one slow request's Python work cannot stall every other request. Each
    # worker builds its own app (pools, limits) from the same environment.
    from uvicorn.supervisors import Multiprocess

    try:
        sock = listening_socket(host, port)
    except OSError as exc:
        print(f"pisman: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    Multiprocess(config, sockets=[sock]).run()
    return 0


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


def cmd_keys_add(args: argparse.Namespace) -> int:
    """Create an API key and print it once."""
    from pisman import db, keys
    from pisman.settings import get_settings

    with db.connect(get_settings().DATABASE_URL) as conn:
        try:
            plain = keys.create_key(conn, role=args.role, name=args.name, city_id=args.city)
        except keys.ApiKeyError as exc:
            print(f"pisman: {exc}", file=sys.stderr)
            return 2
    key_id = keys.split_key(plain)
    print(
        f"API key {key_id} ({args.role}) for {args.name}"
        + (f", city {args.city}" if args.city else "")
    )
    print(f"  {plain}")
    print("  shown once; only its SHA-256 is stored. Send it as the X-API-Key header.")
    return 0


def cmd_keys_list(args: argparse.Namespace) -> int:
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
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    """Revoke a key by its id."""
    from pisman import db, keys
    from pisman.settings import get_settings

    with db.connect(get_settings().DATABASE_URL) as conn:
        try:
            keys.revoke_key(conn, key_id=args.key_id)
        except keys.ApiKeyError as exc:
            print(f"pisman: {exc}", file=sys.stderr)
            return 2
    print(f"revoked key {args.key_id}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add `pisman api` and `pisman keys ...`."""
    p = sub.add_parser("api", help="serve the HTTP API (uvicorn on API_HOST:API_PORT)")
    p.add_argument("--host", default=None, help="override API_HOST")
    p.add_argument("--port", type=int, default=None, help="override API_PORT")
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        choices=range(1, 65),
        metavar="N",
        help="worker processes (override API_WORKERS; 2-4 in production)",
    )
    p.set_defaults(func=cmd_api)

    k = sub.add_parser("keys", help="API keys: add, list, revoke")
    k_sub = k.add_subparsers(dest="keys_command", metavar="ACTION", parser_class=sub._parser_class)
    k_sub.required = True
    p = k_sub.add_parser("add", help="create a key; prints it once")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--name", required=True, help="who or what uses the key (e.g. dashboard)")
    p.add_argument("--city", default=None, help="limit the key to one city (default: every city)")
    p.set_defaults(func=cmd_keys_add)
    p = k_sub.add_parser("list", help="list keys")
    p.set_defaults(func=cmd_keys_list)
    p = k_sub.add_parser("revoke", help="revoke a key by its id")
    p.add_argument("key_id")
    p.set_defaults(func=cmd_keys_revoke)
