"""`pisman ingest`: run the MQTT ingestion service until SIGTERM or SIGINT."""

from __future__ import annotations

import signal
from types import FrameType

import click

from pisman.clierrors import CommandFailed
from pisman.logs import setup_logging
from pisman.settings import get_settings


@click.command("ingest", help="run the MQTT ingestion service (until SIGTERM)")
@click.option("--client-id", default=None, help="MQTT client id (default INGEST_CLIENT_ID)")
@click.option(
    "--share-group",
    default=None,
    help="join the shared subscription $share/<group>/... (default INGEST_SHARE_GROUP)",
)
@click.option("--batch-size", type=int, default=None, help="readings per batch (INGEST_BATCH_SIZE)")
@click.option(
    "--flush-ms", type=int, default=None, help="max wait before a flush (INGEST_FLUSH_MS)"
)
@click.option("--metrics-port", type=int, default=None, help="Prometheus port, 0 = off")
def cmd_ingest(
    client_id: str | None,
    share_group: str | None,
    batch_size: int | None,
    flush_ms: int | None,
    metrics_port: int | None,
) -> None:
    """Run ingest in the foreground; unreachable database or broker → one line, exit 1."""
    from ingest.client import BrokerUnavailable
    from ingest.service import IngestOptions, IngestService

    settings = get_settings()
    setup_logging(settings.LOG_LEVEL)
    options = IngestOptions.from_settings(
        settings,
        client_id=client_id,
        share_group=share_group,
        batch_size=batch_size,
        flush_ms=flush_ms,
        metrics_port=metrics_port,
    )
    service = IngestService(settings, options)

    def _stop(signum: int, frame: FrameType | None) -> None:
        service.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        service.start()
    except BrokerUnavailable as exc:
        service.writer.close()
        service.metrics.close()
        raise CommandFailed(str(exc)) from exc
    except OSError as exc:  # e.g. the metrics port is taken
        service.writer.close()
        raise CommandFailed(str(exc)) from exc
    except Exception:  # DatabaseUnavailable, MigrationError: pisman.clierrors reports them
        service.writer.close()
        service.metrics.close()
        raise
    service.run()


def register(cli: click.Group) -> None:
    """Add `pisman ingest`."""
    cli.add_command(cmd_ingest)
