"""Moved to pisman/keys.py (API keys are stored credentials, used by the core's `pisman up`).

Kept only so bench/api/run.py (owned elsewhere) runs until it imports pisman.keys.
"""

from pisman.keys import *  # noqa: F403
from pisman.keys import create_key, hash_secret, split_key, verify

__all__ = ["create_key", "hash_secret", "split_key", "verify"]
