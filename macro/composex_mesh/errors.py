"""Errors a user can act on, gathered and reported at once (the AWS SAM transform's style)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

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


MASK = "****"
"""What a ``NoEcho`` parameter's value is shown as, as CloudFormation shows it."""


@dataclass(frozen=True)
class Masker:
    """Hides the values of a template's ``NoEcho`` parameters in every text the macro shows or logs (SPEC §5)."""

    secrets: tuple[str, ...] = ()
    """The texts to hide, longest first (so that a value containing another is hidden whole)."""

    @classmethod
    def of(cls, fragment: Mapping[str, Any], parameter_values: Mapping[str, Any]) -> Masker:
        """The secrets of ``fragment``: each ``NoEcho`` parameter's value this deploy, and its ``Default``."""
        parameters = fragment.get("Parameters")
        if not isinstance(parameters, Mapping):
            return cls()
        found: set[str] = set()
        for name, definition in parameters.items():
            if not isinstance(definition, Mapping) or str(definition.get("NoEcho")).lower() != "true":
                continue
            for value in (parameter_values.get(name), definition.get("Default")):
                found.update(_forms(value))
        found.discard("")
        return cls(tuple(sorted(found, key=lambda text: (-len(text), text))))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text

    def mask_error(self, error: InvalidSectionError) -> InvalidSectionError:
        return InvalidSectionError(
            [SectionError(self.mask(item.path), self.mask(item.message)) for item in error.errors]
        )

    def mask_exception(self, error: BaseException) -> None:
        """Mask, in place, the text of an unexpected exception and of those it chains to (they are logged)."""
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            text = str(current)
            if self.mask(text) != text:
                current.args = (self.mask(text),)
            current = current.__cause__ or current.__context__


def _forms(value: Any) -> Iterator[str]:
    """The ways a parameter value can appear in a message: as written, quoted by ``repr`` or JSON, and for a
    list (``CommaDelimitedList``) each item and the whole."""
    scalar = (str, int, float)
    if isinstance(value, list):
        items = [str(item) for item in value if isinstance(item, scalar)]
        items.append(",".join(items))
    elif isinstance(value, scalar):
        items = [str(value)]
    else:  # None, or a structure no parameter value has
        return
    for item in items:
        yield item
        yield repr(item)[1:-1]
        yield json.dumps(item)[1:-1]
