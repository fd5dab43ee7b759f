"""Logging a Flask test client of the dashboard in through its login form."""

from __future__ import annotations

import re
from typing import Any

PASSWORD = "Sampah-Bandung-2026"  # a password the users' policy accepts


def log_in(client: Any, username: str, password: str) -> Any:
    """Log a Flask test client in through the login form (its CSRF token first)."""
    page = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None, page[:300]
    return client.post(
        "/login",
        data={"csrf": csrf.group(1), "username": username, "password": password, "next": "/"},
    )
