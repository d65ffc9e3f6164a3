"""Errors a user can act on, gathered and reported at once (the AWS SAM transform's style)."""

from __future__ import annotations

from dataclasses import dataclass

from . import SECTION_KEY

MAX_LISTED = 100
"""Errors listed in one message (all are counted): the answer must stay readable and within Lambda's limits."""
MAX_PATH = 200
MAX_MESSAGE = 400


def _shorten(text: str, limit: int) -> str:
    """``text``, or its start and end around an ellipsis when it is longer than ``limit``."""
    if len(text) <= limit:
        return text
    keep = (limit - 3) // 2
    return f"{text[:keep]}...{text[-keep:]}"


@dataclass(frozen=True, order=True)
class SectionError:
    """One problem in the section: where it is (``Nodes.frontend.Backends[1]``) and what would be right."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"[{_shorten(self.path or SECTION_KEY, MAX_PATH)}] {_shorten(self.message, MAX_MESSAGE)}"


class InvalidSectionError(Exception):
    """The section (or the template around it) cannot be expanded; carries every error found."""

    def __init__(self, errors: list[SectionError]) -> None:
        self.errors = list(errors)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        listed = " ".join(str(error) for error in self.errors[:MAX_LISTED])
        if len(self.errors) > MAX_LISTED:
            listed += f" ... and {len(self.errors) - MAX_LISTED} more: fix these first."
        return f"Invalid {SECTION_KEY} section. Number of errors found: {len(self.errors)}. {listed}"


class ErrorCollector:
    """Gathers errors while a stage walks the section; raises them all at the end of the stage."""

    def __init__(self) -> None:
        self.errors: list[SectionError] = []
        self.tainted: set[str] = set()
        """Paths whose values failed to parse: later checks stay silent about them instead of guessing."""

    def add(self, path: str, message: str) -> None:
        self.errors.append(SectionError(path, message))

    def add_parse(self, path: str, message: str) -> None:
        """An error of the parser: the value at ``path`` is unusable, so checks of what contains it are skipped."""
        self.add(path, message)
        self.tainted.add(path)

    def add_check(self, path: str, message: str) -> None:
        """An error of a cross-key check, dropped when it concerns a value that already failed to parse."""
        if not any(_overlaps(path, tainted) for tainted in self.tainted):
            self.add(path, message)

    def __bool__(self) -> bool:
        return bool(self.errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidSectionError(self.errors)


def _overlaps(path: str, other: str) -> bool:
    """True when one path contains the other (``Nodes.a`` and ``Nodes.a.Service``), or they are equal."""
    shorter, longer = sorted((path, other), key=len)
    return longer == shorter or longer.startswith((f"{shorter}.", f"{shorter}[")) or not shorter
