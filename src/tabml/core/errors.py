"""Errors meant for people: each one says what went wrong, where, and what to do next."""


class TabmlError(Exception):
    """Base class for every error tabml reports to a user without a traceback."""

    exit_code = 1


class ConfigError(TabmlError):
    """A params.yaml section is missing, misspelt or has a wrong value.

    `problems` holds each invalid key and what is wrong with it, where validation found them
    (so `tabml params` can name the conf/ file that sets each key).
    """

    exit_code = 2

    def __init__(self, message: str, problems: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.problems = problems


class DataError(TabmlError):
    """An input file cannot be read or does not meet its schema."""

    exit_code = 3


class WriteError(DataError, OSError):
    """An output could not be written (a full disk, a failing volume): the message names it.
    An OSError too, so that code retrying a failed write (the prediction log) still sees
    one."""

    exit_code = 3


class EmptyBatchError(DataError):
    """A batch with the right columns and no rows: nothing was monitored, which is not
    "no alerts" (a broken export must not read as all clear)."""

    exit_code = 12


class PackageError(TabmlError):
    """A model package is missing, incomplete or has been tampered with."""

    exit_code = 4
