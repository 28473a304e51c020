"""Exceptions raised by medseg for problems the user can fix.

Every error carries a message that names the file (where there is one), what is wrong and
what to do about it. The CLI turns any :class:`MedsegError` into that one line on stderr and
exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from difflib import get_close_matches
from os import PathLike


class MedsegError(Exception):
    """Base class for user-facing errors (bad input, bad configuration, bad files)."""

    def __init__(self, message: str, *, path: str | PathLike[str] | None = None) -> None:
        self.path = None if path is None else str(path)
        self.message = message
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InvalidInputError(MedsegError):
    """An input file or directory cannot be read or is not what the command needs."""


class GeometryError(MedsegError):
    """Voxel grids or affines are invalid or do not match where they must."""


class ConfigError(MedsegError):
    """A configuration, plan or option value is invalid."""


class CheckpointError(MedsegError):
    """A checkpoint is missing, corrupt, unsafe or incompatible."""


class DatasetError(MedsegError):
    """A dataset folder or manifest is malformed."""


def check_option(value: str, allowed: Iterable[str], *, name: str) -> str:
    """Return ``value`` if it is one of ``allowed``; otherwise raise a "did you mean" error.

    Args:
        value: the user's choice.
        allowed: the valid choices.
        name: what the option is called, for the message (e.g. ``"model"``).

    Raises:
        ConfigError: ``value`` is not allowed; the message lists the valid names.
    """
    choices = list(allowed)
    if value in choices:
        return value
    close = get_close_matches(value, choices, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"unknown {name} {value!r}; choose one of {', '.join(map(repr, choices))}.{hint}")


def check_keys(data: Mapping[str, object], allowed: Iterable[str], *, where: str) -> None:
    """Raise :class:`ConfigError` for the first key of ``data`` not in ``allowed`` ("did you mean").

    Args:
        data: a mapping read from YAML/JSON.
        allowed: the valid keys.
        where: the section, for the message (e.g. ``"loop"``).
    """
    valid = sorted(allowed)
    for key in data:
        if key not in valid:
            close = get_close_matches(str(key), valid, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; allowed: {', '.join(valid)}"
            raise ConfigError(f"unknown key {key!r} in {where}{hint}")
