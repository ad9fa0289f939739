"""JSON that every store can keep: no NaN, no ±Infinity, no lone surrogates, bounded depth.

Python's ``json`` accepts ``NaN``, ``Infinity``, numbers that overflow to
``inf`` (``1e999``) and escaped lone surrogates (``"\\ud800"``); PostgreSQL's
jsonb refuses all of them, and SQLite stores rows that later fail to render.
Everything a client sends as JSON goes through ``loads`` (request bodies, via
the API's JSON parser) or ``check`` (values already decoded, such as a
multipart field's JSON string).
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 32


class StrictJSONError(ValueError):
    """The text is not JSON we accept; the message says why, in plain words."""


def _refuse_constant(name: str) -> Any:
    raise StrictJSONError(f"{name} is not a JSON number.")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJSONError(f"The number {text[:40]} is out of range.")
    return value


def _check_text(text: str, allow_nul: bool) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise StrictJSONError("Text may not contain lone surrogate code points.") from None
    if not allow_nul and "\x00" in text:
        raise StrictJSONError("Text may not contain NUL characters.")


def check(value: Any, max_depth: int = MAX_DEPTH, allow_nul: bool = False) -> Any:
    """`value` unchanged if it is storable JSON, else StrictJSONError.

    `allow_nul` is for a whole request body, whose text fields refuse NUL
    themselves (and whose unknown fields are ignored); a JSON value that is
    stored as it is (metadata) must not carry it.
    """
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            _check_text(item, allow_nul)
        elif isinstance(item, bool) or item is None or isinstance(item, int):
            continue
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise StrictJSONError("NaN and Infinity are not JSON numbers.")
        elif isinstance(item, dict | list):
            if depth > max_depth:
                raise StrictJSONError(f"JSON may be nested at most {max_depth} levels deep.")
            if isinstance(item, dict):
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise StrictJSONError("Object keys must be strings.")
                    _check_text(key, allow_nul)
                    stack.append((child, depth + 1))
            else:
                stack.extend((child, depth + 1) for child in item)
        else:
            raise StrictJSONError(f"{type(item).__name__} is not a JSON value.")
    return value


def loads(text: str | bytes, max_depth: int = MAX_DEPTH, allow_nul: bool = False) -> Any:
    """Decode `text` as strict JSON, or raise StrictJSONError."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
    except StrictJSONError:
        raise
    except RecursionError:
        raise StrictJSONError(f"JSON may be nested at most {max_depth} levels deep.") from None
    except ValueError as exc:
        raise StrictJSONError(f"Malformed JSON: {exc}.") from None
    return check(value, max_depth, allow_nul)
