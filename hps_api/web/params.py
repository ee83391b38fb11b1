"""Request input decoding: legacy parameters (docs/api.md §1) and JSON API bodies (§5).

Legacy parameters are decoded by hand because old clients depend on details. Pairs are split on
`&`; empty pairs are ignored; a pair splits on its first `=` (values may contain `=`); `+` is a
space and `%XX` is decoded once; a repeated key takes the last value; the query string wins
over a form body.

A JSON body is taken only as what the OpenAPI document says: `application/json` in UTF-8, one
object, each known field of its type, no other field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_to_bytes

from werkzeug.exceptions import UnsupportedMediaType

from hps_api.errors import InvalidInput

MAX_QUERY_BYTES = 8 * 1024
MAX_PARAM_NAME = 64
JSON_TYPE = "application/json"
TEXT, TEXT_MAP = "a string", 'an object of KEY: "text" pairs'
#: the fields a body may carry: name -> (required, TEXT or TEXT_MAP)
Fields = Mapping[str, tuple[bool, str]]
_BODY_SHAPE = 'the request body must be a UTF-8 JSON object such as {"value": "text"}'


def parse_pairs(raw: bytes) -> dict[str, str]:
    """Return the parameters of a query string or urlencoded body; InvalidInput on bad bytes."""
    params: dict[str, str] = {}
    for pair in raw.split(b"&"):
        if not pair:
            continue
        name_raw, _, value_raw = pair.partition(b"=")
        name = _decode(name_raw)
        if not name:
            continue
        if len(name) > MAX_PARAM_NAME or not name.isprintable():
            raise InvalidInput(f"bad parameter name {name[:MAX_PARAM_NAME]!r}")
        params[name] = _decode(value_raw)
    return params


def merge(query: dict[str, str], form: dict[str, str]) -> dict[str, str]:
    """Return form parameters overridden by query parameters (the query string wins)."""
    return {**form, **query}


def _decode(raw: bytes) -> str:
    try:
        return unquote_to_bytes(raw.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("parameters must be UTF-8 text") from None


def require_json(mimetype: str, mimetype_params: Mapping[str, str]) -> None:
    """Raise UnsupportedMediaType (415) unless the body is `application/json` in UTF-8."""
    if mimetype != JSON_TYPE:
        raise UnsupportedMediaType(f"the request body must be {JSON_TYPE} "
                                   f"(Content-Type: {JSON_TYPE})")
    if mimetype_params.get("charset", "utf-8").lower() not in ("utf-8", "utf8"):
        raise UnsupportedMediaType(f"the request body must be {JSON_TYPE} in UTF-8")


def json_object(raw: bytes, fields: Fields) -> dict[str, Any]:
    """Return the JSON object of a body that has exactly the `fields` it may.

    InvalidInput for a body that is not UTF-8 (a byte order mark, UTF-16 or 32), not JSON
    (NaN and Infinity are not), not an object, names a field twice, lacks a required field, has
    one of the wrong type or an unknown one.
    """
    body = _parse(raw)
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise InvalidInput(f"unknown field {json.dumps(unknown[0])[:40]}: the body takes "
                           f"{', '.join(json.dumps(f) for f in fields)}")
    for name, (required, kind) in fields.items():
        if name not in body:
            if required:
                raise InvalidInput(f'"{name}" is required: {kind}')
        elif not _is(body[name], kind):
            raise InvalidInput(f'"{name}" must be {kind}')
    return body


def _parse(raw: bytes) -> dict[str, Any]:
    if raw.startswith(b"\xef\xbb\xbf"):
        raise InvalidInput(f"{_BODY_SHAPE}; it starts with a byte order mark")
    if b"\x00" in raw:  # JSON text never holds a raw NUL; UTF-16 and UTF-32 always do
        raise InvalidInput(f"{_BODY_SHAPE}; it is UTF-16 or UTF-32, not UTF-8")
    try:
        body = json.loads(raw.decode("utf-8"), object_pairs_hook=_object,
                          parse_constant=_not_json)
    except UnicodeDecodeError:
        raise InvalidInput(f"{_BODY_SHAPE}; it is not UTF-8") from None
    except (ValueError, RecursionError):
        raise InvalidInput(f"{_BODY_SHAPE}; it is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput(_BODY_SHAPE)
    return body


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        names = [name for name, _ in pairs]
        twice = next(name for name in names if names.count(name) > 1)
        raise InvalidInput(f"field {json.dumps(twice)[:40]} given twice")
    return found


def _not_json(constant: str) -> None:
    raise ValueError(f"{constant} is not JSON")


def _is(value: object, kind: str) -> bool:
    if kind == TEXT_MAP:
        return isinstance(value, dict) and all(isinstance(v, str) for v in value.values())
    return isinstance(value, str)
