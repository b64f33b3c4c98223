"""The ``as_of`` argument of time travel: a commit id or a wall-clock time.

Light on purpose (the client imports it): it only turns what a user passes into what
travels to the store, a commit id (``int``) or an ISO-8601 time (``str``), and back into
an ``int`` or a UTC ``datetime`` on the store side (:func:`parse_as_of`).

Times without a time zone are UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from cloudsdk.errors import InvalidArgumentError

AsOf = int | str | None

_HINT = ("pass a commit id (an int from fg.commit_details()) or a time (datetime, pandas "
         "Timestamp, or an ISO-8601 string such as '2026-11-26T10:00:00'; no time zone means UTC)")


def encode_as_of(value: Any, what: str = "as_of") -> AsOf:
    """``value`` as it travels to the store: None, a commit id (int) or an ISO-8601 string.

    Raises:
        InvalidArgumentError: a bool, a float, or anything that is neither a commit id nor a time.
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise InvalidArgumentError(f"{what} cannot be a bool: {_HINT}")
    if isinstance(value, int):
        return int(value)
    module = type(value).__module__
    if module == "numpy" and hasattr(value, "item"):
        if type(value).__name__.startswith("datetime64"):
            text = str(value)
            if text == "NaT":
                raise InvalidArgumentError(f"{what} is NaT (not a time): {_HINT}")
            return text
        if type(value).__name__.startswith(("int", "uint")):
            return int(value.item())
    if isinstance(value, dt.datetime):
        if str(value) == "NaT":
            raise InvalidArgumentError(f"{what} is NaT (not a time): {_HINT}")
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day).isoformat()
    if isinstance(value, str):
        if not value.strip():
            raise InvalidArgumentError(f"{what} is an empty string: {_HINT}")
        return value.strip()
    raise InvalidArgumentError(f"{what} has type {type(value).__name__}: {_HINT}")


def parse_as_of(value: Any, what: str = "as_of") -> int | dt.datetime:
    """A commit id, or a time as an aware UTC datetime.

    Raises:
        InvalidArgumentError: not a commit id nor a readable time.
    """
    encoded = encode_as_of(value, what)
    if encoded is None:
        raise InvalidArgumentError(f"{what} is None: {_HINT}")
    if isinstance(encoded, int):
        return encoded
    text = encoded.replace(" ", "T", 1) if "T" not in encoded else encoded
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = dt.datetime.fromisoformat(text)
    except ValueError:
        if encoded.lstrip("-").isdigit():
            raise InvalidArgumentError(
                f"{what}={encoded!r} is a string: pass a commit id as an int ({int(encoded)})") from None
        raise InvalidArgumentError(f"{what}={encoded!r} is not an ISO-8601 time: {_HINT}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


__all__ = ["AsOf", "encode_as_of", "parse_as_of"]
