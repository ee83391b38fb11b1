"""The bash-era configuration syntax, read as data: assignment lines and the INI `os.conf`.

The old system `source`d its `.conf` files in bash. Here they are only parsed, never run: a line
is data when it is a plain assignment (`KEY=value`, `export KEY="value"`, `KEY='value'`) whose
text says what its value is. Quoting is decoded as bash decodes it; `$(...)`, `${...}`,
backquotes and `$X` inside double quotes (and `$X`, `${...}` unquoted) stay literal text, never
expanded. Everything else (commands, shell blocks and what they guard, here-documents, multi-line
values, unquoted command substitutions) is rejected with a reason. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from hps_api.errors import InvalidInput
from hps_api.ids import normalize_key, normalize_os_id, validate_value

_EXPORT = re.compile(r"export[ \t]+")
_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=")
_SECTION = re.compile(r"\[([^\]]*)\][ \t]*(?:[#;].*)?")
_HEREDOC_OPERATOR = re.compile(r"(?<!<)<<(?!<)")
_HEREDOC = re.compile(r"(?<!<)<<(-?)[ \t]*(['\"]?)([^\s'\"<>;&|()]+)\2")
_COMMAND_BREAK = re.compile(r"[;&|()\n]")
_DQ_ESCAPED = frozenset('"\\$`')
_BARE_SYNTAX = frozenset(";|&<>()")
_CLOSING = {"`": "`", "$(": ")", "${": "}"}
_BLOCK_OPENERS = frozenset({"if", "for", "while", "until", "case", "select", "{"})
_BLOCK_CLOSERS = frozenset({"fi", "done", "esac", "}"})
# Words after which the next word is again in command position (`if ! grep`, `then KEY=1`).
_LEADERS = frozenset({"if", "while", "until", "{", "then", "do", "else", "elif", "!"})


class NotData(ValueError):
    """A line or file that is not data for the store; `reason` says why, for the report."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Assignment:
    """One accepted assignment: normalised key, decoded value, and where it was.

    `written` is the key as the file spelled it (`virtualization_status` for VIRTUALIZATION_STATUS).
    """

    line: int
    text: str
    key: str
    value: str
    written: str = field(default="", compare=False)


@dataclass(frozen=True)
class Rejected:
    """One line that was not taken, with the reason."""

    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class _Logical:
    """A command as bash reads it: physical lines `first`..`last` (1-based)."""

    first: int
    last: int
    text: str
    skeleton: str
    unterminated: bool


def parse_assignment(line: str) -> tuple[str, str] | None:
    """Return (name, value) of a one-line bash assignment, None for a blank or comment line.

    The name is returned as written (not yet normalised). Raises NotData for anything that is
    not a single plain assignment, with the reason.
    """
    body = line.lstrip(" \t")
    if not body or body.startswith("#"):
        return None
    export = _EXPORT.match(body)
    if export:
        body = body[export.end() :]
    match = _ASSIGNMENT.match(body)
    if match is None:
        raise NotData("not a KEY=value assignment")
    value, end = _read_word(body, match.end())
    rest = body[end:].lstrip(" \t")
    if rest and not rest.startswith("#"):
        raise NotData("text after the value: an unquoted space ends it and the rest runs as a "
                      "command")
    return match.group(1), value


def read_shell(text: str) -> tuple[list[Assignment], list[Rejected]]:
    """Return a bash `.conf` file's assignments in order, and the lines rejected.

    Keys are normalised and values validated. Duplicates are all returned: the caller decides
    (the last one wins, as in bash). Assignments inside a shell block (`if`, `for`, `while`,
    `case`, `{`) are rejected, since bash ran them conditionally or repeatedly.
    """
    found: list[Assignment] = []
    rejected: list[Rejected] = []
    blocks: list[int] = []
    for logical in _logical_lines(_lines(text)):
        try:
            assignment = _assignment(logical, blocks)
        except NotData as err:
            rejected.append(Rejected(logical.first, logical.text, err.reason))
            _track_blocks(blocks, logical)
            continue
        if assignment is not None:
            found.append(assignment)
    return found, rejected


def read_ini(text: str) -> tuple[dict[str, list[Assignment]], list[Rejected]]:
    """Return an INI `os.conf`'s assignments per normalised OS id, and the lines rejected.

    `[arch:name:version]` opens a section; `key = value` (spaces optional) lines belong to it;
    lines starting with `;` or `#` are comments. As in Python's configparser, a value is the
    trimmed text after the first `=`, quotes and all. Lines of an invalid section are rejected.
    """
    sections: dict[str, list[Assignment]] = {}
    rejected: list[Rejected] = []
    current: list[Assignment] | None = None
    header_line = 0
    for number, raw in enumerate(_lines(text), start=1):
        stripped = raw.strip()
        if not stripped or stripped[0] in "#;":
            continue
        try:
            if stripped.startswith("["):
                current, header_line = None, number
                current = sections.setdefault(_section_id(stripped), [])
            elif current is None:
                raise NotData(f"in the skipped section of line {header_line}" if header_line
                              else "outside any [arch:name:version] section")
            else:
                current.append(_ini_assignment(number, raw, stripped))
        except NotData as err:
            rejected.append(Rejected(number, raw, err.reason))
    return sections, rejected


# -- shell files --------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    """Return the physical lines; a BOM and CR line endings (edited on Windows) are dropped."""
    return [raw.removesuffix("\r") for raw in text.removeprefix("\ufeff").split("\n")]


def _logical_lines(lines: list[str]) -> Iterator[_Logical]:
    """Yield the commands of a file, joining lines a quote, a `\\` or a here-document spans."""
    start = 0
    while start < len(lines):
        end = start
        skeleton, quote, backslash = _scan(lines[start], "")
        parts = [skeleton]
        while (quote or backslash) and end + 1 < len(lines):
            end += 1
            skeleton, quote, backslash = _scan(lines[end], quote)
            parts.append(skeleton)
        skeleton = "\n".join(parts)
        end = _heredoc_end(lines, start, end, skeleton)
        yield _Logical(start + 1, end + 1, lines[start], skeleton, bool(quote or backslash))
        start = end + 1


def _scan(line: str, quote: str) -> tuple[str, str, bool]:
    """Return the line's unquoted skeleton, the quote still open at its end, and whether it
    ends on a continuation backslash. `quote` is the quote open when the line starts."""
    skeleton: list[str] = []
    index = 0
    while index < len(line):
        char = line[index]
        if char == "\\" and quote != "'":
            if index + 1 == len(line):
                return "".join(skeleton), quote, True
            index += 2
            continue
        if quote:
            quote = "" if char == quote else quote
        elif char == "#" and (index == 0 or line[index - 1] in " \t;&|()"):
            break
        elif char in "'\"":
            quote = char
        else:
            skeleton.append(char)
        index += 1
    return "".join(skeleton), quote, False


def _heredoc_end(lines: list[str], start: int, end: int, skeleton: str) -> int:
    """Return the index of the last line of the here-document a command opens (`end` if none)."""
    if not _HEREDOC_OPERATOR.search(skeleton):
        return end
    match = _HEREDOC.search("\n".join(lines[start : end + 1]))
    if match is None:
        return len(lines) - 1
    indent = "\t" if match.group(1) else ""
    for index in range(end + 1, len(lines)):
        if lines[index].lstrip(indent) == match.group(3):
            return index
    return len(lines) - 1


def _assignment(logical: _Logical, blocks: list[int]) -> Assignment | None:
    """Return the command's assignment, None for a blank or comment; NotData otherwise."""
    if logical.unterminated:
        raise NotData(f"unterminated quote or trailing backslash: runs from line {logical.first} "
                      "to the end of the file")
    if logical.last > logical.first:
        raise NotData(f"spans lines {logical.first}-{logical.last} (a multi-line value, command "
                      "or here-document)")
    parsed = parse_assignment(logical.text)
    if parsed is None:
        return None
    if blocks:
        raise NotData(f"inside the shell block opened on line {blocks[-1]}")
    key, value = _checked(*parsed)
    return Assignment(logical.first, logical.text, key, value, parsed[0])


def _checked(key: str, value: str) -> tuple[str, str]:
    """Return the normalised key and the value; NotData when the store cannot hold them."""
    if any("\udc80" <= char <= "\udcff" for char in value):
        raise NotData("value is not UTF-8 text")
    try:
        return normalize_key(key), validate_value(value)
    except InvalidInput as err:
        raise NotData(str(err)) from None


def _track_blocks(blocks: list[int], logical: _Logical) -> None:
    """Push the line of each shell block the command opens, pop one per block it closes."""
    delta = _block_delta(logical.skeleton)
    if delta > 0:
        blocks.extend([logical.first] * delta)
    else:
        del blocks[max(0, len(blocks) + delta) :]


def _block_delta(skeleton: str) -> int:
    """Return how many shell blocks a command opens (negative: closes), by its keywords."""
    delta = 0
    for command in _COMMAND_BREAK.split(skeleton):
        for word in command.split():
            delta += (word in _BLOCK_OPENERS) - (word in _BLOCK_CLOSERS)
            if word not in _LEADERS:
                break
    return delta


# -- one value ----------------------------------------------------------------------------------


def _read_word(text: str, pos: int) -> tuple[str, int]:
    """Return the decoded value of the shell word starting at pos, and the index after it."""
    pieces: list[str] = []
    while pos < len(text) and text[pos] not in " \t":
        if text[pos] == "'":
            end = text.find("'", pos + 1)
            if end < 0:
                raise NotData("unterminated single quote")
            piece, pos = text[pos + 1 : end], end + 1
        elif text[pos] == '"':
            piece, pos = _read_double_quoted(text, pos + 1)
        else:
            piece, pos = _read_bare(text, pos)
        pieces.append(piece)
    return "".join(pieces), pos


def _read_double_quoted(text: str, pos: int) -> tuple[str, int]:
    """Return the text of a double-quoted string whose body starts at pos, and the index after
    its closing quote. Only `\\"`, `\\\\`, `\\$` and `` \\` `` are escapes, as in bash."""
    pieces: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(pieces), pos + 1
        if char == "\\" and text[pos + 1 : pos + 2] in _DQ_ESCAPED:
            pieces.append(text[pos + 1])
            pos += 2
        elif char == "`" or text.startswith(("$(", "${"), pos):
            end = _substitution_end(text, pos)
            pieces.append(text[pos:end])
            pos = end
        else:
            pieces.append(char)
            pos += 1
    raise NotData("unterminated double quote")


def _read_bare(text: str, pos: int) -> tuple[str, int]:
    """Return one unquoted piece of a value (a character, an escape or `${...}`) and the index
    after it; NotData for shell syntax."""
    char = text[pos]
    if char == "\\":
        return text[pos + 1 : pos + 2], pos + 2
    if text.startswith("${", pos):
        end = _substitution_end(text, pos)
        return text[pos:end], end
    if char == "`" or text.startswith("$(", pos):
        raise NotData("unquoted command substitution: a shell construct, not data")
    if text.startswith(("$'", '$"'), pos):
        raise NotData("$'...' and $\"...\" quoting are not supported")
    if char in _BARE_SYNTAX:
        raise NotData(f"unquoted {char!r}: a shell construct, not data")
    return char, pos + 1


def _substitution_end(text: str, pos: int) -> int:
    """Return the index after the `$(...)`, `${...}` or backquoted text starting at pos.

    Raises NotData when it is unclosed or holds a quote or backslash: bash parses those
    recursively, so where the value ends would be a guess.
    """
    opener = "`" if text[pos] == "`" else text[pos : pos + 2]
    closer = _CLOSING[opener]
    depth = 0
    for index in range(pos + len(opener), len(text)):
        char = text[index]
        if char in "\"'\\":
            raise NotData(f"quote or backslash inside {opener}...{closer}: its extent is "
                          "ambiguous")
        if char == closer:
            if depth == 0:
                return index + 1
            depth -= 1
        elif char == opener[-1]:
            depth += 1
    raise NotData(f"unclosed {opener}...{closer}")


# -- INI ----------------------------------------------------------------------------------------


def _section_id(stripped: str) -> str:
    """Return the normalised OS id of a `[arch:name:version]` header; NotData otherwise."""
    match = _SECTION.fullmatch(stripped)
    if match is None:
        raise NotData("not a [arch:name:version] section header; section skipped")
    try:
        return normalize_os_id(match.group(1))
    except InvalidInput as err:
        raise NotData(f"{err}; section skipped") from None


def _ini_assignment(number: int, raw: str, stripped: str) -> Assignment:
    """Return the assignment of a `key = value` line; NotData otherwise."""
    key, sep, value = stripped.partition("=")
    if not sep:
        raise NotData("not a key = value line")
    written = key.strip()
    key, value = _checked(written, value.strip())
    return Assignment(number, raw, key, value, written)
