"""`pisman up`: the whole stack with a simulated city (placeholder)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the `up` subcommand (not yet)."""
