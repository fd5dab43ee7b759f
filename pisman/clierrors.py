"""One way from an error to the `pisman` command's exit status.

Every command of every component runs under `run()`: success is 0; bad input (a usage error,
a bad setting, a refused value) prints one line and is 2; a runtime failure (database or
broker unreachable, a failed backup, a failing job) prints one line and is 1; Ctrl-C is 130.
Never a traceback for any of these. A command reports an error by raising `InputError` or
`CommandFailed` (or one of the core's own errors listed below, which already carry their
message); a component whose own exception means one of the two says so with `exit_codes()`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import click
import psycopg

from pisman.backup import BackupError, BackupFailed
from pisman.citydata import CityFileError
from pisman.db import DatabaseUnavailable, MigrationError
from pisman.devices import RegistryError
from pisman.embedded import EmbeddedError
from pisman.keys import ApiKeyError
from pisman.settings import SettingsError
from pisman.users import UserError

USAGE = 2
FAILURE = 1
INTERRUPTED = 130


class CliError(Exception):
    """A command cannot do what it was asked; str() is the one line the person reads."""

    exit_code = FAILURE


class InputError(CliError):
    """Bad input (arguments, files, values): exit status 2."""

    exit_code = USAGE


class CommandFailed(CliError):
    """A runtime failure (a server unreachable, a job failing): exit status 1."""

    exit_code = FAILURE


# The core's own errors, by what they mean to the person at the terminal.
INPUT_ERRORS: tuple[type[Exception], ...] = (
    SettingsError,
    RegistryError,
    CityFileError,
    BackupError,
    UserError,
    ApiKeyError,
)
RUNTIME_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    MigrationError,
    BackupFailed,
    EmbeddedError,
    psycopg.OperationalError,  # the server went away in the middle of a command
)


@contextmanager
def exit_codes(
    *,
    input_errors: tuple[type[Exception], ...] = (),
    failures: tuple[type[Exception], ...] = (),
) -> Iterator[None]:
    """Inside: a component's own exceptions mean bad input (exit 2) or a runtime failure (exit 1)."""
    try:
        yield
    except input_errors as exc:
        raise InputError(str(exc)) from exc
    except failures as exc:
        raise CommandFailed(str(exc)) from exc


class Choice(click.Choice):  # type: ignore[type-arg,unused-ignore]
    """A choice whose refusal names the choices, as the command line always said it."""

    def get_invalid_choice_message(self, value: Any, ctx: click.Context | None) -> str:
        return f"invalid choice: {value!r} (choose from {', '.join(map(str, self.choices))})"


class Group(click.Group):
    """A command group: an unknown subcommand is a usage error naming the choices."""

    group_class = type  # subgroups made with .group() are Groups too

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0]
        if (
            not ctx.resilient_parsing
            and not name.startswith("-")
            and self.get_command(ctx, name) is None
        ):
            choices = ", ".join(self.list_commands(ctx))
            raise click.UsageError(f"invalid choice: {name!r} (choose from {choices})", ctx=ctx)
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The list of subcommands with each one's whole first paragraph, never cut at 45 characters."""
        rows = []
        for name in self.list_commands(ctx):
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd.short_help or (cmd.help or "").split("\n\n")[0]))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _one_line(exc: BaseException) -> str:
    """The exception's message; a driver's multi-line one joined into one line."""
    text = str(exc).strip()
    if isinstance(exc, psycopg.OperationalError):
        text = "database error: " + "; ".join(ln.strip() for ln in text.splitlines() if ln.strip())
    return text


def run(cli: click.Command, argv: Sequence[str] | None = None, *, prog_name: str = "pisman") -> int:
    """Parse argv, run the command, and turn every outcome into an exit status (never raises)."""
    try:
        result = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name=prog_name,
            standalone_mode=False,
        )
    except click.exceptions.NoArgsIsHelpError as exc:  # `pisman` or `pisman devices` alone
        _say(exc.format_message())
        return USAGE
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx else prog_name
        _say(f"{where}: {exc.format_message().rstrip('.')} (see `{where} --help`)")
        return USAGE
    except click.ClickException as exc:  # Click's own refusals, e.g. an unreadable file
        _say(f"{prog_name}: {exc.format_message()}")
        return exc.exit_code
    except click.Abort:  # Click's form of Ctrl-C (and of end-of-input at a prompt)
        _say(f"{prog_name}: interrupted")
        return INTERRUPTED
    except KeyboardInterrupt:
        _say(f"{prog_name}: interrupted")
        return INTERRUPTED
    except CliError as exc:
        _say(f"{prog_name}: {exc}")
        return exc.exit_code
    except INPUT_ERRORS as exc:
        _say(f"{prog_name}: {_one_line(exc)}")
        return USAGE
    except RUNTIME_ERRORS as exc:
        _say(f"{prog_name}: {_one_line(exc)}")
        return FAILURE
    # A command returns nothing; Click returns the status of --help and --version itself.
    return result if isinstance(result, int) else 0
