"""Static check that every TimescaleDB-only statement in sql/ sits behind pisman_has_timescale()."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pglast

TIMESCALE_ONLY = re.compile(
    r"\b(create_hypertable|by_range|time_bucket|add_continuous_aggregate_policy|add_compression_policy|"
    r"add_columnstore_policy|add_retention_policy|refresh_continuous_aggregate|remove_\w+_policy|"
    r"timescaledb\.\w+|CREATE\s+EXTENSION\s+(IF\s+NOT\s+EXISTS\s+)?timescaledb)\b",
    re.IGNORECASE,
)
DOLLAR_TS = re.compile(r"\$ts\$(.*?)\$ts\$", re.DOTALL)
# The one statement allowed to name the extension: its creation behind the three-fact detection.
DETECTION_FACTS = ("pg_available_extensions", "shared_preload_libraries", "pg_extension")


@dataclass(frozen=True)
class Finding:
    """A problem in one file."""

    file: str
    message: str


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _walk(node: Any, guarded: bool, detection: bool) -> Iterator[tuple[str, str, bool, bool]]:
    """Yield (kind, sql text, guarded, detection) for every SQL-carrying plpgsql statement."""
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, guarded, detection)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key == "PLpgSQL_stmt_if":
            cond = value["cond"]["PLpgSQL_expr"]["query"]
            positive = "pisman_has_timescale()" in cond and not re.search(
                r"NOT\s+pisman_has_timescale", cond, re.I
            )
            facts = all(f in cond for f in DETECTION_FACTS[:2])
            yield ("if", cond, guarded, detection)
            yield from _walk(value.get("then_body", []), guarded or positive, detection or facts)
            for elsif in value.get("elsif_list", []):
                yield from _walk(elsif, guarded, detection)
            yield from _walk(value.get("else_body", []), guarded, detection)
        elif key == "PLpgSQL_stmt_dynexecute":
            yield ("dynexecute", value["query"]["PLpgSQL_expr"]["query"], guarded, detection)
        elif key == "PLpgSQL_stmt_execsql":
            yield ("execsql", value["sqlstmt"]["PLpgSQL_expr"]["query"], guarded, detection)
        elif key == "PLpgSQL_stmt_perform":
            yield ("perform", value["expr"]["PLpgSQL_expr"]["query"], guarded, detection)
        else:
            yield from _walk(value, guarded, detection)


def _plpgsql_functions(sql: str) -> Iterator[str]:
    """Each DO block and plpgsql function as a CREATE FUNCTION statement the plpgsql parser takes."""
    for raw in pglast.parse_sql(sql):
        stmt = raw.stmt
        name = type(stmt).__name__
        if name == "DoStmt":
            body = stmt.args[0].arg.sval
            yield f"CREATE FUNCTION pisman_guard_check() RETURNS void LANGUAGE plpgsql AS $guard$\n{body}\n$guard$;"
        elif name == "CreateFunctionStmt":
            options = {o.defname: o.arg for o in stmt.options or ()}
            if getattr(options.get("language"), "sval", "") == "plpgsql":
                start = raw.stmt_location or 0
                yield sql[start : start + (raw.stmt_len or len(sql))] + ";"


def check_sql(file: str, sql: str) -> list[Finding]:
    """Findings for one migration file (empty when it is clean)."""
    findings: list[Finding] = []
    try:
        statements = pglast.parse_sql(sql)
    except pglast.parser.ParseError as exc:
        return [Finding(file, f"does not parse: {exc}")]
    # Top-level statements (outside plpgsql bodies) must not use TimescaleDB at all.
    for raw in statements:
        if type(raw.stmt).__name__ in ("DoStmt", "CreateFunctionStmt"):
            continue
        start = raw.stmt_location or 0
        text = sql[start : start + (raw.stmt_len or len(sql))]
        if TIMESCALE_ONLY.search(_strip_comments(text)):
            findings.append(Finding(file, f"unguarded TimescaleDB statement: {text.strip()[:80]}"))
    for function_sql in _plpgsql_functions(sql):
        tree = pglast.parse_plpgsql(function_sql)
        for kind, text, guarded, detection in _walk(tree, False, False):
            if kind == "if":
                continue
            uses_timescale = TIMESCALE_ONLY.search(_strip_comments(text))
            if not uses_timescale:
                continue
            if re.search(r"CREATE\s+EXTENSION", text, re.I):
                if not detection:
                    findings.append(
                        Finding(file, "CREATE EXTENSION timescaledb outside the detection check")
                    )
                continue
            if kind != "dynexecute":
                findings.append(
                    Finding(
                        file,
                        f"TimescaleDB call must be a dynamic EXECUTE $ts$...$ts$: {text.strip()[:80]}",
                    )
                )
                continue
            if not guarded:
                findings.append(
                    Finding(
                        file, f"EXECUTE not behind IF pisman_has_timescale(): {text.strip()[:80]}"
                    )
                )
                continue
            bodies = DOLLAR_TS.findall(text)
            if not bodies:
                findings.append(
                    Finding(
                        file, f"TimescaleDB SQL must be quoted as $ts$...$ts$: {text.strip()[:80]}"
                    )
                )
            for ts_sql in bodies:
                # format() placeholders stand for literals and identifiers.
                candidate = re.sub(r"%[LIs]", "'x'", ts_sql)
                try:
                    pglast.parse_sql(candidate)
                except pglast.parser.ParseError as exc:
                    findings.append(
                        Finding(
                            file,
                            f"TimescaleDB statement does not parse ({exc}): {ts_sql.strip()[:80]}",
                        )
                    )
    return findings


def timescale_statements(sql: str) -> list[str]:
    """Every $ts$ body in the file (the TimescaleDB path's statements)."""
    return [m.strip() for m in DOLLAR_TS.findall(sql)]
