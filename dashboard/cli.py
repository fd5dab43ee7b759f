"""Command-line entry for the dashboard component (placeholder until the component lands)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add this component's subcommands (none yet)."""
