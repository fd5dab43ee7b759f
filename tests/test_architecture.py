"""The rooms of the house (docs/architecture.md) and what each may import, read from the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pisman.settings import PROJECT_ROOT

COMPONENTS = ("api", "ingest", "dashboard", "simulators")
# What each package must not import: the core imports no component; components talk to each
# other over HTTP (dashboard -> api) or MQTT (simulators -> ingest), never through code.
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "pisman": (*COMPONENTS, "bench", "tests"),
    "api": ("ingest", "dashboard", "simulators", "bench", "tests"),
    "ingest": ("api", "dashboard", "simulators", "bench", "tests"),
    "dashboard": ("api", "ingest", "simulators", "bench", "tests"),
    "simulators": ("api", "ingest", "dashboard", "bench", "tests"),
}
# Known breaches waiting for their fix (each leaves this list when fixed; the test fails until
# it does). None today: API keys moved from api/keys.py to pisman/keys.py.
KNOWN_BREACHES: set[tuple[str, str]] = set()


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports (absolute imports, at any depth of the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _files(package: str) -> list[Path]:
    return sorted((PROJECT_ROOT / package).rglob("*.py"))


def breaches(package: str, forbidden: tuple[str, ...]) -> set[tuple[str, str]]:
    """(file, module) for each import of a forbidden package by a file of `package`."""
    found = set()
    for path in _files(package):
        for module in imported_modules(path):
            if module.split(".")[0] in forbidden:
                # The module as imported (`from api import keys` counts as api.keys).
                found.add((str(path.relative_to(PROJECT_ROOT)), module))
    # `from api import keys` adds both "api" and "api.keys": keep the most precise.
    return {(f, m) for f, m in found if not any(g == f and n.startswith(m + ".") for g, n in found)}


@pytest.mark.parametrize("package", FORBIDDEN)
def test_a_package_imports_no_other_room(package: str) -> None:
    assert _files(package), f"no Python files under {package}/"
    found = breaches(package, FORBIDDEN[package])
    expected = {b for b in KNOWN_BREACHES if b[0].startswith(package + "/")}
    assert found == expected, f"{package}/ imports another room: {sorted(found - expected)}" + (
        f"; fixed, remove from KNOWN_BREACHES: {sorted(expected - found)}"
        if expected - found
        else ""
    )


def test_routes_never_import_other_routes() -> None:
    """Shared queries live in api/queries/, so a route can change without moving another."""
    found = []
    for path in sorted((PROJECT_ROOT / "api" / "routes").glob("*.py")):
        for module in imported_modules(path):
            if module.startswith("api.routes") and module != "api.routes":
                found.append(f"{path.name} imports {module}")
    assert not found, found


def test_the_scan_sees_every_form_of_import(tmp_path: Path) -> None:
    """Top-level, nested and `from x import y` imports are all found (relative ones are not ours)."""
    source = tmp_path / "m.py"
    source.write_text(
        "import api.keys\nfrom api import keys\ndef f():\n    from ingest.topics import x\n"
        "from . import sibling\n",
        encoding="utf-8",
    )
    assert imported_modules(source) == {"api.keys", "api", "ingest.topics", "ingest.topics.x"}


def test_no_dashboard_page_uses_dash_table() -> None:
    """The page skips Dash's DataTable bundle (dashboard/polyfill.py), so no dashboard code may
    build a DataTable: it would draw nothing. Tables are html.Table."""
    found = [
        f"{path.relative_to(PROJECT_ROOT)} imports {module}"
        for path in _files("dashboard")
        for module in imported_modules(path)
        if module == "dash.dash_table"
        or module.startswith("dash.dash_table.")
        or module == "dash_table"
        or module.startswith("dash_table.")
    ]
    assert not found, found
    mentions = [
        str(path.relative_to(PROJECT_ROOT))
        for path in _files("dashboard")
        if "DataTable(" in path.read_text(encoding="utf-8")
    ]
    assert not mentions, mentions
