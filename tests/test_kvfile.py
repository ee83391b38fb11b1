"""The record grammar (docs/storage.md, "Grammar"): parse, format, update in place."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hps_api.errors import CorruptRecord, HpsError, InvalidInput
from hps_api.ids import validate_value
from hps_api.store.kvfile import (
    Line,
    Record,
    _parse_line,
    _parse_line_checked,
    format_record,
    from_mapping,
    parse,
    parse_items,
)

# -- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", {}),
        (b"A=1\n", {"A": "1"}),
        (b"A=1", {"A": "1"}),
        (b"URL=http://x/?a=b&c=d\n", {"URL": "http://x/?a=b&c=d"}),
        (b"B64=YQ==\n", {"B64": "YQ=="}),
        (b"EQ==\n", {"EQ": "="}),
        (b"EMPTY=\n", {"EMPTY": ""}),
        (b"SPACED= padded \n", {"SPACED": " padded "}),
        (b'QUOTED="value"\n', {"QUOTED": '"value"'}),
        (b"SHELL=$(reboot)\n", {"SHELL": "$(reboot)"}),
        (b"BACKSLASH=a\\nb\n", {"BACKSLASH": "a\\nb"}),
        (b"HASH=#not a comment\n", {"HASH": "#not a comment"}),
        ("NAME=h\u00f4te \u65e5\u672c \U0001f389\n".encode(),
         {"NAME": "h\u00f4te \u65e5\u672c \U0001f389"}),
        (b"_UNDER=x\nA1=y\n", {"_UNDER": "x", "A1": "y"}),
        (b"A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
        (b"A=1\r\nB=2", {"A": "1", "B": "2"}),
        (b"# comment\n\n  # indented comment\n\t\nA=1\n", {"A": "1"}),
        (b"Z=1\nA=2\nM=3\n", {"Z": "1", "A": "2", "M": "3"}),
    ],
)
def test_well_formed_records_parse_to_their_keys_and_values(data, expected):
    record = parse(data)
    assert record.as_dict() == expected
    assert list(record.as_dict()) == list(expected)


def test_the_empty_value_is_set_and_distinct_from_an_unset_key():
    record = parse(b"EMPTY=\n")
    assert record.get("EMPTY") == ""
    assert record.get("MISSING") is None


def test_crlf_line_endings_are_written_back_as_lf():
    record = parse(b"# head\r\nA=1\r\n\r\nB=2\r\n")
    assert record.get("A") == "1"
    assert format_record(record) == b"# head\nA=1\n\nB=2\n"
    assert format_record(record.updated({"B": "3"})) == b"# head\nA=1\n\nB=3\n"


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"A=1\nB=2\nA=3\n", 3, "duplicate key A"),
        (b"A=1\nB=2\nb=3\n", 3, "not upper-case"),
        (b"A=1\nnot a key value line\n", 2, "not a KEY=value"),
        (b"A=1\n\n[section]\n", 3, "not a KEY=value"),
        (b"lower=1\n", 1, "not upper-case"),
        (b"Mixed_Case=1\n", 1, "not upper-case"),
        (b'export A="1"\n', 1, "not upper-case"),
        (b"EXPORT A=1\n", 1, "invalid key"),
        (b" A=1\n", 1, "invalid key"),
        (b"A =1\n", 1, "invalid key"),
        (b"=value\n", 1, "key is empty"),
        (b"1A=1\n", 1, "invalid key"),
        (b"A-B=1\n", 1, "invalid key"),
        ("\u00c4=1\n".encode(), 1, "invalid key"),
        (b"A=1\nB=\xff\n", 2, "not UTF-8"),
        (b"\xc3\x28=1\n", 1, "not UTF-8"),
        (b"A=tab\there\n", 1, "control character"),
        (b"A=nul\x00\n", 1, "control character"),
        (b"A=esc\x1b[0m\n", 1, "control character"),
        (b"A=lone\rcr\n", 1, "control character"),
        (b"A=two crs\r\r\n", 1, "control character"),
        ("A=next\x85line\n".encode(), 1, "control character"),
        ("A=line\u2028sep\n".encode(), 1, "control character"),
        (b"A=del\x7f\n", 1, "control character"),
        (b"# comment with \x00 NUL\n", 1, "control character"),
        (b"A=" + b"x" * (64 * 1024 + 1) + b"\n", 1, "larger than"),
    ],
)
def test_malformed_records_are_corrupt_and_the_error_names_file_and_line(data, line, reason):
    with pytest.raises(CorruptRecord, match=reason) as caught:
        parse(data, "/srv/hps-config/hosts/x.conf")
    assert caught.value.line == line
    assert caught.value.path == "/srv/hps-config/hosts/x.conf"
    assert f"/srv/hps-config/hosts/x.conf:{line}" in str(caught.value)


# -- rewriting -------------------------------------------------------------------------------

_ORIGINAL = b"# managed by hps\n\nSTATE=INSTALLING\n# network\nIP=10.0.0.5\nHOSTNAME=n1\n"


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, _ORIGINAL),
        (
            {"IP": "10.0.0.6"},
            b"# managed by hps\n\nSTATE=INSTALLING\n# network\nIP=10.0.0.6\nHOSTNAME=n1\n",
        ),
        (
            {"NETMASK": "255.255.255.0", "TYPE": "compute"},
            _ORIGINAL + b"NETMASK=255.255.255.0\nTYPE=compute\n",
        ),
        (
            {"STATE": None},
            b"# managed by hps\n\n# network\nIP=10.0.0.5\nHOSTNAME=n1\n",
        ),
        (
            {"NEW": "x", "HOSTNAME": "n2", "STATE": None, "GONE": None},
            b"# managed by hps\n\n# network\nIP=10.0.0.5\nHOSTNAME=n2\nNEW=x\n",
        ),
        (
            {"STATE": ""},
            b"# managed by hps\n\nSTATE=\n# network\nIP=10.0.0.5\nHOSTNAME=n1\n",
        ),
    ],
)
def test_a_rewrite_keeps_comments_blank_lines_and_key_order_and_appends_new_keys(
    changes, expected
):
    assert format_record(parse(_ORIGINAL).updated(changes)) == expected


def test_updating_leaves_the_original_record_untouched():
    record = parse(_ORIGINAL)
    record.updated({"IP": "10.0.0.9", "STATE": None})
    assert format_record(record) == _ORIGINAL


def test_a_record_built_from_a_mapping_normalises_keys_and_starts_with_its_header():
    record = from_mapping({"os_id": "x86_64:rocky:10", "Ip": "10.0.0.5"}, header="host n1")
    assert format_record(record) == b"# host n1\nOS_ID=x86_64:rocky:10\nIP=10.0.0.5\n"


@pytest.mark.parametrize(
    "values", [{"A": "line\nbreak"}, {"A": "tab\t"}, {"not a key": "x"}, {"": "x"}]
)
def test_a_record_built_from_a_mapping_refuses_bad_keys_and_values(values):
    with pytest.raises(InvalidInput):
        from_mapping(values)


# -- properties ------------------------------------------------------------------------------

_FORBIDDEN = ("Cc", "Cs", "Zl", "Zp")
_clean_text = st.text(alphabet=st.characters(exclude_categories=_FORBIDDEN))
_keys = st.from_regex(r"[A-Z_][A-Z0-9_]{0,20}", fullmatch=True)


def _accepted(value: str) -> bool:
    try:
        validate_value(value)
    except InvalidInput:
        return False
    return True


@given(value=st.one_of(_clean_text, st.text()).filter(_accepted), key=_keys)
@example(value="YQ==", key="B64")
@example(value="", key="EMPTY")
@example(value=" =\u00a0\ufeff\u200b", key="ODD")
def test_any_value_the_validator_accepts_reads_back_identical(value, key):
    data = format_record(Record().updated({key: value}))
    assert parse(data).get(key) == value
    assert parse(data).as_dict() == {key: value}


@given(data=st.binary())
@example(data=b"\xff\xfe")
@example(data=b"A=1\nA=2\n")
def test_parsing_arbitrary_bytes_either_succeeds_or_reports_a_corrupt_record(data):
    _parse_or_corrupt(data)


_grammar_pieces = st.sampled_from(
    [b"A", b"b", b"_", b"1", b"=", b"==", b"\n", b"\r", b"\r\n", b"#", b" ", b"\t", b"\x00",
     b"\x85", b"\xc2\x85", b"\xe2\x80\xa8", b"\xff", b"\xc3", b"\xc3\xa9", b"\xed\xa0\x80",
     b"KEY=", b"KEY=v\n", "\u0131".encode()]
)


@given(data=st.lists(_grammar_pieces, max_size=40).map(b"".join))
def test_parsing_grammar_shaped_noise_either_succeeds_or_reports_a_corrupt_record(data):
    _parse_or_corrupt(data)


def _parse_or_corrupt(data: bytes) -> None:
    """Parse; a CorruptRecord is an answer, any other domain error fails, and so does anything
    else (which pytest reports as the failure it is)."""
    try:
        record = parse(data, "fuzz.conf")
    except CorruptRecord as err:
        assert err.path == "fuzz.conf"
        assert err.line is None or err.line >= 1
        return
    except HpsError as err:
        pytest.fail(f"parse raised {type(err).__name__}, not CorruptRecord: {err}")
    assert parse(format_record(record)).as_dict() == record.as_dict()


_comment_lines = st.builds(
    lambda indent, text: Line(f"{indent}#{text}"),
    st.sampled_from(["", " ", "  ", "\t"]),
    _clean_text,
)
_blank_lines = st.sampled_from(["", " ", "\t", "  \t "]).map(Line)


@st.composite
def _records(draw: st.DrawFn) -> Record:
    keys = draw(st.lists(_keys, unique=True, max_size=8))
    values = draw(st.lists(_clean_text, min_size=len(keys), max_size=len(keys)))
    lines = [Line(f"{k}={v}", k, v) for k, v in zip(keys, values, strict=True)]
    for extra in draw(st.lists(st.one_of(_comment_lines, _blank_lines), max_size=6)):
        lines.insert(draw(st.integers(0, len(lines))), extra)
    return Record(tuple(lines))


@given(record=_records())
def test_a_formatted_record_parses_back_to_the_same_record(record):
    assert parse(format_record(record)) == record


@given(record=_records(), data=st.data())
def test_updating_a_record_changes_only_the_keys_named(record, data):
    before = record.as_dict()
    changes = data.draw(st.dictionaries(_keys, st.one_of(st.none(), _clean_text), max_size=4))
    after = parse(format_record(record.updated(changes))).as_dict()
    expected = {k: v for k, v in {**before, **changes}.items() if v is not None}
    assert after == expected
    untouched = [k for k in before if k not in changes]
    assert [k for k in after if k in untouched] == untouched


# -- the fast paths give the general rules' verdicts -------------------------------------------

_line_pieces = st.sampled_from(
    ["A", "KEY", "_X1", "a", "=", "==", " ", "\t", "#", "\r", "\x00", "\x7f", "\x85", "é",
     "\u2028", "\ud800", "v", "1", "x" * 130, "K" * 129])


@given(raw=st.one_of(st.text(), st.lists(_line_pieces, max_size=12).map("".join)))
@example(raw="K" * 128 + "=v")
@example(raw="K" * 129 + "=v")
@example(raw="A=" + "x" * 65536)
@example(raw="A=" + "x" * 65537)
def test_the_plain_line_shortcut_gives_the_general_rules_verdict(raw):
    assert _outcome(lambda: _parse_line(raw, "f", 1)) == \
        _outcome(lambda: _parse_line_checked(raw, "f", 1))


def _with_slow_path(data: bytes) -> bytes:
    """The same file plus a trailing comment, which no whole-file shortcut accepts."""
    return data + b"# forces the general path\n"


@given(data=st.one_of(st.binary(), st.lists(_grammar_pieces, max_size=40).map(b"".join),
                      _records().map(format_record)))
@example(data=b"A=1\nB=2\n")
@example(data=b"A=1\nA=2\n")
@example(data=b"A=1")
def test_parse_items_is_parse_as_dict_and_the_plain_file_shortcut_changes_nothing(data):
    expected = _outcome(lambda: parse(data, "f").as_dict())
    assert _outcome(lambda: parse_items(data, "f")) == expected
    if data.endswith(b"\n") or not data:
        general = _outcome(lambda: parse(_with_slow_path(data), "f").lines[:-1])
        assert _outcome(lambda: parse(data, "f").lines) == general


def _outcome(call):  # type: ignore[no-untyped-def]
    """Return what a call returns, or its CorruptRecord as (path, line, message)."""
    try:
        return call()
    except CorruptRecord as err:
        return ("corrupt", err.path, err.line, str(err))
