"""The bash-era syntax read as data: what is an assignment, what its value is, what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hps_api.importer.legacy_syntax import (
    Assignment,
    NotData,
    Rejected,
    parse_assignment,
    read_ini,
    read_shell,
)

STORABLE_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('KEY="value"', ("KEY", "value")),
        ('export KEY="value"', ("KEY", "value")),
        ("export\tKEY=value", ("KEY", "value")),
        ("KEY='value'", ("KEY", "value")),
        ("KEY=value", ("KEY", "value")),
        ("  KEY=indented", ("KEY", "indented")),
        ('KEY="value" # comment', ("KEY", "value")),
        ("KEY='value'   # comment", ("KEY", "value")),
        ("KEY=value # comment", ("KEY", "value")),
        ("KEY=value   ", ("KEY", "value")),
        ("KEY=a#b", ("KEY", "a#b")),
        ("os_id=x86_64:rocky:10", ("os_id", "x86_64:rocky:10")),
        ("KEY=", ("KEY", "")),
        ('KEY=""', ("KEY", "")),
        ("KEY= # set, empty", ("KEY", "")),
        ('KEY="$(reboot)"', ("KEY", "$(reboot)")),
        ('KEY="`reboot`"', ("KEY", "`reboot`")),
        ('KEY="$((1 + 2))"', ("KEY", "$((1 + 2))")),
        ('KEY="${HOME}/x $USER"', ("KEY", "${HOME}/x $USER")),
        ("KEY=$HOME", ("KEY", "$HOME")),
        ("KEY=${HOME}/x", ("KEY", "${HOME}/x")),
        ('KEY="\\"quoted\\""', ("KEY", '"quoted"')),
        ('KEY="a\\\\b"', ("KEY", "a\\b")),
        ('KEY="\\$(reboot)"', ("KEY", "$(reboot)")),
        ('KEY="\\`id\\`"', ("KEY", "`id`")),
        ('KEY="C:\\temp\\new"', ("KEY", "C:\\temp\\new")),
        ("KEY='\"; rm -rf /; \"'", ("KEY", '"; rm -rf /; "')),
        ('KEY="\\"; rm -rf /; \\""', ("KEY", '"; rm -rf /; "')),
        ("KEY='$(reboot) `id` \\n'", ("KEY", "$(reboot) `id` \\n")),
        ("KEY=a%20b", ("KEY", "a%20b")),
        ('KEY="grüß dich ✓ 日本"', ("KEY", "grüß dich ✓ 日本")),
        ("KEY=a=b=c", ("KEY", "a=b=c")),
        ("KEY=dGVzdA==", ("KEY", "dGVzdA==")),
        ("KEY=\"a\"'b'c", ("KEY", "abc")),
        ("KEY=a\\ b", ("KEY", "a b")),
        ("KEY={a,b}*", ("KEY", "{a,b}*")),
    ],
)
def test_an_assignment_line_gives_its_name_and_literal_value(
    line: str, expected: tuple[str, str]
) -> None:
    assert parse_assignment(line) == expected


@pytest.mark.parametrize("line", ["", "   ", "# comment", "  # indented comment", "#KEY=x"])
def test_blank_and_comment_lines_are_not_assignments(line: str) -> None:
    assert parse_assignment(line) is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("if [ -f x ]; then", "not a KEY=value assignment"),
        ("source foo", "not a KEY=value assignment"),
        (". /etc/profile", "not a KEY=value assignment"),
        ("echo hi", "not a KEY=value assignment"),
        ("KEY = value", "not a KEY=value assignment"),
        ("KEY+=more", "not a KEY=value assignment"),
        ("export KEY", "not a KEY=value assignment"),
        ("1KEY=x", "not a KEY=value assignment"),
        ("KEY=a b", "text after the value"),
        ('KEY="a" reboot', "text after the value"),
        ("A=1 B=2", "text after the value"),
        ("KEY=a;reboot", "unquoted ';'"),
        ("KEY=a|b", "unquoted '|'"),
        ("KEY=a&", "unquoted '&'"),
        ("KEY=x>/etc/passwd", "unquoted '>'"),
        ("KEY=(a b)", "unquoted '('"),
        ("KEY=$(reboot)", "unquoted command substitution"),
        ("KEY=`reboot`", "unquoted command substitution"),
        ("KEY=$'a\\nb'", "are not supported"),
        ('KEY="$(echo "x")"', "its extent is ambiguous"),
        ('KEY="${X:-"a"}"', "its extent is ambiguous"),
        ("KEY=${X:-'a'}", "its extent is ambiguous"),
        ("KEY=${HOME", "unclosed ${...}"),
        ('KEY="$(reboot"', "its extent is ambiguous"),
        ('KEY="open', "unterminated double quote"),
        ("KEY='open", "unterminated single quote"),
    ],
)
def test_a_line_that_is_not_a_plain_assignment_is_refused_with_a_reason(
    line: str, reason: str
) -> None:
    with pytest.raises(NotData) as caught:
        parse_assignment(line)
    assert reason in caught.value.reason


def _single_quoted(value: str) -> str:
    return "'" + value.replace("'", "'\\''") + "'"


def _double_quoted(value: str) -> str:
    return '"' + "".join("\\" + c if c in '"\\$`' else c for c in value) + '"'


@given(STORABLE_TEXT)
def test_any_storable_value_survives_bash_single_quoting(value: str) -> None:
    assert parse_assignment(f"KEY={_single_quoted(value)}") == ("KEY", value)


@given(STORABLE_TEXT)
def test_any_storable_value_survives_bash_double_quoting(value: str) -> None:
    assert parse_assignment(f"export KEY={_double_quoted(value)}") == ("KEY", value)


def test_a_file_gives_normalised_keys_and_keeps_every_duplicate_in_order() -> None:
    found, rejected = read_shell("os_id=a\nexport OS_ID=\"b\"\n# c\n\nName='n'\n")
    assert found == [
        Assignment(1, "os_id=a", "OS_ID", "a"),
        Assignment(2, 'export OS_ID="b"', "OS_ID", "b"),
        Assignment(5, "Name='n'", "NAME", "n"),
    ]
    assert rejected == []


@pytest.mark.parametrize(
    ("text", "expected", "kept"),
    [
        ('TAB="a\tb"\nB=2', [(1, "value contains a control character (U+0009)")], "B"),
        ("ESC=a\x1bb\nB=2", [(1, "value contains a control character (U+001B)")], "B"),
        ("K" * 129 + "=x\nB=2", [(1, "key longer than 128 characters")], "B"),
        (
            'A=1\nMOTD="Welcome\nHOSTNAME=evil\n"\nB=2\n',
            [(2, "spans lines 2-4 (a multi-line value, command or here-document)")],
            "A B",
        ),
        (
            "A=1\nLONG=one\\\nHOSTNAME=evil\nB=2\n",
            [(2, "spans lines 2-3 (a multi-line value, command or here-document)")],
            "A B",
        ),
        (
            "A=1\nBROKEN='never closed\nB=2\n",
            [(2, "unterminated quote or trailing backslash: runs from line 2 to the end of "
                 "the file")],
            "A",
        ),
        (
            "if [ -f /etc/x ]; then\n  EXTRA=1\nelse\n  EXTRA=2\nfi\nB=2\n",
            [
                (1, "not a KEY=value assignment"),
                (2, "inside the shell block opened on line 1"),
                (3, "not a KEY=value assignment"),
                (4, "inside the shell block opened on line 1"),
                (5, "not a KEY=value assignment"),
            ],
            "B",
        ),
        (
            "for n in 1 2; do\n  while true; do\n    X=1\n  done\n  Y=2\ndone\nB=2\n",
            [
                (1, "not a KEY=value assignment"),
                (2, "not a KEY=value assignment"),
                (3, "inside the shell block opened on line 2"),
                (4, "not a KEY=value assignment"),
                (5, "inside the shell block opened on line 1"),
                (6, "not a KEY=value assignment"),
            ],
            "B",
        ),
        (
            'setup() {\n  X=1\n}\necho "fi done"\nB=2\n',
            [
                (1, "not a KEY=value assignment"),
                (2, "inside the shell block opened on line 1"),
                (3, "not a KEY=value assignment"),
                (4, "not a KEY=value assignment"),
            ],
            "B",
        ),
        (
            "cat > /tmp/f <<'EOF'\nHOSTNAME=evil\nEOF\nB=2\n",
            [(1, "spans lines 1-3 (a multi-line value, command or here-document)")],
            "B",
        ),
        ("B=2\nX=\udcff\n", [(2, "value is not UTF-8 text")], "B"),
    ],
)
def test_file_level_rejections_keep_what_bash_would_not_have_set_plainly(
    text: str, expected: list[tuple[int, str]], kept: str
) -> None:
    found, rejected = read_shell(text)
    assert [(r.line, r.reason) for r in rejected] == expected
    assert [a.key for a in found] == kept.split()


def test_crlf_endings_and_a_byte_order_mark_are_not_part_of_the_data() -> None:
    found, rejected = read_shell('\ufeffexport A="1"\r\nB=2\r\n')
    assert [(a.key, a.value) for a in found] == [("A", "1"), ("B", "2")]
    assert rejected == []


def test_an_ini_file_gives_one_section_per_os_id_with_upper_case_keys() -> None:
    sections, rejected = read_ini(
        "; OS registry\n"
        "stray = 1\n"
        "[x86_64:rocky:10]\n"
        "kernel = vmlinuz\n"
        "initrd=initrd.img\n"
        "# comment\n"
        "repo = http://mirror/r?a=b  \n"
        "[../../etc]\n"
        "kernel = evil\n"
        "[X86_64:Debian:12] ; trailing comment\n"
        'name = Debian 12 "bookworm"\n'
        "not a pair\n"
        "bad-key = x\n"
        "[x86_64:rocky:10]\n"
        "kernel = vmlinuz2\n"
    )
    assert {os_id: [(a.line, a.key, a.value) for a in items]
            for os_id, items in sections.items()} == {
        "x86_64:rocky:10": [
            (4, "KERNEL", "vmlinuz"),
            (5, "INITRD", "initrd.img"),
            (7, "REPO", "http://mirror/r?a=b"),
            (15, "KERNEL", "vmlinuz2"),
        ],
        "x86_64:debian:12": [(11, "NAME", 'Debian 12 "bookworm"')],
    }
    assert [(r.line, r.reason) for r in rejected] == [
        (2, "outside any [arch:name:version] section"),
        (8, "invalid OS id '../../etc': expected <arch>:<name>:<version>; section skipped"),
        (9, "in the skipped section of line 8"),
        (12, "not a key = value line"),
        (13, "invalid key 'bad-key': use letters, digits and _"),
    ]
    assert rejected[1] == Rejected(8, "[../../etc]", rejected[1].reason)
