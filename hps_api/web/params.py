"""Legacy parameter decoding (api.md §1), done by hand because old clients depend on details.

Pairs are split on `&`; empty pairs are ignored; a pair splits on its first `=` (values may
contain `=`); `+` is a space and `%XX` is decoded once; a repeated key takes the last value; the
query string wins over a form body.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from hps_api.errors import InvalidInput

MAX_QUERY_BYTES = 8 * 1024
MAX_PARAM_NAME = 64


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
