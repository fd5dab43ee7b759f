"""`pisman ingest`: run the MQTT ingestion service until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import signal
import sys
from types import FrameType

from pisman.db import DatabaseUnavailable, MigrationError
from pisman.logs import setup_logging
from pisman.settings import get_settings


def cmd_ingest(args: argparse.Namespace) -> int:
    """Run ingest in the foreground; unreachable database or broker → one line, exit 1."""
    from ingest.client import BrokerUnavailable
    from ingest.service import IngestOptions, IngestService

    settings = get_settings()
    setup_logging(settings.LOG_LEVEL)
    options = IngestOptions.from_settings(
        settings,
        client_id=args.client_id,
        share_group=args.share_group,
        batch_size=args.batch_size,
        flush_ms=args.flush_ms,
        metrics_port=args.metrics_port,
    )
    service = IngestService(settings, options)

    def _stop(signum: int, frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        service.start()
    except (DatabaseUnavailable, MigrationError, BrokerUnavailable) as exc:
        print(f"pisman ingest: {exc}", file=sys.stderr)
        service.writer.close()
        service.metrics.close()
        return 1
    except OSError as exc:  # e.g. the metrics port is taken
        print(f"pisman ingest: {exc}", file=sys.stderr)
        service.writer.close()
        return 1
    service.run()
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    """Add `pisman ingest`."""
    p = sub.add_parser("ingest", help="run the MQTT ingestion service (until SIGTERM)")
    p.add_argument("--client-id", default=None, help="MQTT client id (default INGEST_CLIENT_ID)")
    p.add_argument(
        "--share-group",
        default=None,
        help="join the shared subscription $share/<group>/... (default INGEST_SHARE_GROUP)",
    )
    p.add_argument(
        "--batch-size", type=int, default=None, help="readings per batch (INGEST_BATCH_SIZE)"
    )
    p.add_argument(
        "--flush-ms", type=int, default=None, help="max wait before a flush (INGEST_FLUSH_MS)"
    )
    p.add_argument("--metrics-port", type=int, default=None, help="Prometheus port, 0 = off")
    p.set_defaults(func=cmd_ingest)
