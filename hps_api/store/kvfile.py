"""The record grammar: pure functions over bytes, no I/O.

A record is a sequence of lines, each a comment, a blank line or `KEY=value` split on the first
`=`. There is no quoting and no escaping: the value is every character after the first `=` up to
the end of the line. Lines end with LF; a CRLF ending is accepted on read (the CR belongs to the
line ending, never to the value) and written back as LF.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from hps_api.errors import CorruptRecord, InvalidInput
from hps_api.ids import MAX_KEY_LENGTH, MAX_VALUE_BYTES, normalize_key, validate_value

_PLAIN_LINE = re.compile(r"([A-Z_][A-Z0-9_]*)=")
_PLAIN_FILE = re.compile(
    rf"(?:[A-Z_][A-Z0-9_]{{0,{MAX_KEY_LENGTH - 1}}}=[ -~]{{0,{MAX_VALUE_BYTES}}}\n)*")


@dataclass(frozen=True)
class Line:
    """One line of a record: `key` is None for comments and blank lines (kept as `text`)."""

    text: str
    key: str | None = None
    value: str = ""


@dataclass(frozen=True)
class Record:
    """A parsed record: its lines in order, comments and blank lines included."""

    lines: tuple[Line, ...] = ()

    def as_dict(self) -> dict[str, str]:
        """Return the keys and values in file order."""
        return {line.key: line.value for line in self.lines if line.key is not None}

    def get(self, key: str) -> str | None:
        """Return the value of an upper-case key, or None when it is not set."""
        return next((ln.value for ln in self.lines if ln.key == key), None)

    def keys(self) -> Iterator[str]:
        """Yield the keys in file order."""
        return (line.key for line in self.lines if line.key is not None)

    def updated(self, changes: Mapping[str, str | None]) -> Record:
        """Return a new record with `changes` applied (None unsets a key).

        Untouched lines keep their place; a changed key keeps its line; new keys are appended in
        the order given. Keys must already be normalised.
        """
        pending = dict(changes)
        lines: list[Line] = []
        for line in self.lines:
            if line.key is None or line.key not in pending:
                lines.append(line)
                continue
            value = pending.pop(line.key)
            if value is not None:
                lines.append(Line(f"{line.key}={value}", line.key, value))
        for key, value in pending.items():
            if value is not None:
                lines.append(Line(f"{key}={value}", key, value))
        return Record(tuple(lines))


def parse(data: bytes, path: str = "<record>") -> Record:
    """Return the Record for file bytes; raise CorruptRecord naming the file and line.

    Corrupt: bytes that are not UTF-8, a line that is neither a comment (`#` after optional
    spaces), blank nor `KEY=value`, an invalid key or value, or a key that appears twice.
    """
    plain = _plain_lines(data)
    if plain is not None:
        lines = tuple(Line(raw, *raw.split("=", 1)) for raw in plain)
        if len({line.key for line in lines}) == len(lines):
            return Record(lines)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorruptRecord(path, _line_of(data, err.start), "not UTF-8 text") from None
    raw_lines = text.split("\n")
    if raw_lines and raw_lines[-1] == "":
        raw_lines.pop()
    lines_found: list[Line] = []
    seen: set[str] = set()
    for number, raw in enumerate(raw_lines, start=1):
        line = _parse_line(raw.removesuffix("\r"), path, number)
        if line.key is not None:
            if line.key in seen:
                raise CorruptRecord(path, number, f"duplicate key {line.key}")
            seen.add(line.key)
        lines_found.append(line)
    return Record(tuple(lines_found))


def parse_items(data: bytes, path: str = "<record>") -> dict[str, str]:
    """Return the keys and values of file bytes: `parse(data, path).as_dict()`, faster.

    A file of plain lines only (`KEY=value`, printable ASCII, LF-terminated, no key twice),
    which is every file the store writes without comments, is split in one pass; anything
    else goes through `parse`, which also raises CorruptRecord exactly as it would.
    """
    plain = _plain_lines(data)
    if plain is not None:
        items = dict(line.split("=", 1) for line in plain)
        if len(items) == len(plain):
            return items
    return parse(data, path).as_dict()


def format_record(record: Record) -> bytes:
    """Return the file bytes for a record: one line each, LF endings, UTF-8."""
    return "".join(line.text + "\n" for line in record.lines).encode("utf-8")


def from_mapping(values: Mapping[str, str], header: str | None = None) -> Record:
    """Return a new record holding `values` (keys normalised, values validated)."""
    lines = [Line(f"# {header}")] if header else []
    record = Record(tuple(lines))
    return record.updated({normalize_key(k): validate_value(v) for k, v in values.items()})


def _plain_lines(data: bytes) -> list[str] | None:
    """Return the lines of a file made of plain lines only (`KEY=value` with a valid key and a
    printable ASCII value, each ending in LF), else None: such a file needs no other check
    than for a key given twice, so parse and parse_items take it in one pass."""
    if not data.isascii():
        return None
    text = data.decode("ascii")
    return text.splitlines() if _PLAIN_FILE.fullmatch(text) else None


def _parse_line(raw: str, path: str, number: int) -> Line:
    """Return one parsed line; raise CorruptRecord when it fits no form of the grammar."""
    found = _PLAIN_LINE.match(raw)
    if found is not None:
        # The common line, decided without the general checks below (same verdict: a valid
        # key, then a printable ASCII value, which has no control character).
        key, value = found.group(1), raw[found.end():]
        if len(key) <= MAX_KEY_LENGTH and len(value) <= MAX_VALUE_BYTES and \
                value.isascii() and value.isprintable():
            return Line(raw, key, value)
    return _parse_line_checked(raw, path, number)


def _parse_line_checked(raw: str, path: str, number: int) -> Line:
    """Return one parsed line by the grammar's general rules (see _parse_line)."""
    stripped = raw.strip(" \t")
    if not stripped or stripped.startswith("#"):
        if any(ord(ch) < 32 and ch != "\t" for ch in raw):
            raise CorruptRecord(path, number, "control character in a comment")
        return Line(raw)
    key_text, sep, value = raw.partition("=")
    if not sep:
        raise CorruptRecord(path, number, "not a KEY=value line")
    if key_text != key_text.upper():
        raise CorruptRecord(path, number, f"key {key_text!r} is not upper-case")
    try:
        key = normalize_key(key_text)
        validate_value(value)
    except InvalidInput as err:
        raise CorruptRecord(path, number, str(err)) from None
    return Line(raw, key, value)


def _line_of(data: bytes, offset: int) -> int:
    """Return the 1-based line number of a byte offset."""
    return data.count(b"\n", 0, offset) + 1
