"""Kang PisMan tracker: the shared core (settings, database access, domain vocabulary)."""

__version__ = "0.1.0"
