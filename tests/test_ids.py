"""Identifiers at the edge: MACs, keys, values, cluster names, OS ids, sensitive key names.

Each table is the grammar from docs/storage.md; a refused input raises InvalidInput before anything
can become part of a path or a record line.
"""

from __future__ import annotations

import fnmatch
import unicodedata

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from hps_api.errors import InvalidInput
from hps_api.ids import (
    DEFAULT_SENSITIVE_PATTERNS,
    DOMAIN_PATTERN,
    HOSTNAME_PATTERN,
    MAX_KEY_LENGTH,
    MAX_VALUE_BYTES,
    colon_mac,
    is_sensitive,
    normalize_key,
    normalize_mac,
    normalize_os_id,
    os_id_to_stem,
    os_stem_to_id,
    respelled,
    spellings,
    validate_cluster,
    validate_value,
)

# -- MAC addresses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        "52:54:00:aa:bb:01",
        "52:54:00:AA:BB:01",
        "52:54:00:Aa:bB:01",
        "52-54-00-aa-bb-01",
        "52-54-00-AA-BB-01",
        "5254.00aa.bb01",
        "5254.00AA.BB01",
        "525400aabb01",
        "525400AABB01",
    ],
)
def test_every_common_mac_spelling_normalises_to_twelve_lower_case_hex_digits(spelling):
    assert normalize_mac(spelling) == "525400aabb01"


def test_a_locally_administered_unicast_mac_is_a_host_mac():
    assert normalize_mac("02:00:00:00:00:01") == "020000000001"


@pytest.mark.parametrize(
    ("spelling", "why"),
    [
        ("", "empty"),
        ("52:54:00:aa:bb", "five octets"),
        ("52:54:00:aa:bb:01:02", "seven octets"),
        ("525400aabb0", "eleven hex digits"),
        ("525400aabb011", "thirteen hex digits"),
        ("52:54:0:aa:bb:1", "octets without leading zero"),
        ("52:54:00-aa:bb:01", "mixed colon and hyphen"),
        ("52-54-00:aa-bb-01", "mixed hyphen and colon"),
        ("5254.00aa:bb01", "mixed dot and colon"),
        ("5254:00aa:bb01", "dotted grouping with colons"),
        ("52 54 00 aa bb 01", "spaces as separators"),
        ("52:54:00:aa:bb:0g", "non-hex digit"),
        ("zz:54:00:aa:bb:01", "non-hex octet"),
        ("\uff15\uff12:54:00:aa:bb:01", "full-width digits"),
        ("../../etc/passwd", "path traversal"),
        ("525400aabb01/..", "path traversal after a valid MAC"),
        ("../525400aabb01", "path traversal before a valid MAC"),
        ("525400aabb01\x00", "trailing NUL"),
        ("525400aabb01\n", "trailing newline"),
        ("525400aabb01\r\n", "trailing CRLF"),
        ("52:54:00:aa:bb:01\n", "colon form, trailing newline"),
        ("5254.00aa.bb01\n", "dotted form, trailing newline"),
        ("\n525400aabb01", "leading newline"),
        (" 525400aabb01", "leading space"),
        ("525400aabb01 ", "trailing space"),
        ("\t525400aabb01", "leading tab"),
        ("525400aabb01\x0b", "trailing vertical tab"),
        ("525400aabb01\u00a0", "trailing no-break space"),
        ("\u2028525400aabb01", "leading line separator"),
        ("\x00", "NUL alone"),
        ("525400\x00aabb01", "embedded NUL"),
        ("01:00:5e:00:00:01", "IPv4 multicast"),
        ("33:33:00:00:00:01", "IPv6 multicast"),
        ("53:54:00:aa:bb:01", "multicast bit set"),
        ("ff:ff:ff:ff:ff:ff", "broadcast"),
        ("FFFFFFFFFFFF", "broadcast, bare"),
        ("00:00:00:00:00:00", "all zero"),
        ("000000000000", "all zero, bare"),
    ],
)
def test_anything_that_is_not_a_host_mac_is_refused(spelling, why):
    with pytest.raises(InvalidInput):
        normalize_mac(spelling)


@pytest.mark.parametrize("spelling", ["525400aabb01\n", " 52:54:00:aa:bb:01", "5254.00aa.bb01\t"])
def test_a_mac_with_surrounding_whitespace_is_refused_with_a_hint(spelling):
    with pytest.raises(InvalidInput, match="surrounding whitespace"):
        normalize_mac(spelling)


@pytest.mark.parametrize("not_text", [None, 525400, b"525400aabb01"])
def test_a_mac_that_is_not_text_is_refused(not_text):
    with pytest.raises(InvalidInput):
        normalize_mac(not_text)


def test_a_normalised_mac_is_shown_with_colons():
    assert colon_mac("525400aabb01") == "52:54:00:aa:bb:01"


# -- keys ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "key"),
    [
        ("OS_ID", "OS_ID"),
        ("os_id", "OS_ID"),
        ("Os_Id", "OS_ID"),
        ("_PRIVATE", "_PRIVATE"),
        ("_", "_"),
        ("a1", "A1"),
        ("IP2_NETMASK", "IP2_NETMASK"),
        ("k" * MAX_KEY_LENGTH, "K" * MAX_KEY_LENGTH),
    ],
)
def test_keys_are_case_insensitive_and_stored_upper_case(spelling, key):
    assert normalize_key(spelling) == key


@pytest.mark.parametrize(
    ("spelling", "why"),
    [
        ("", "empty"),
        ("1KEY", "leading digit"),
        ("9", "digit alone"),
        ("OS-ID", "hyphen"),
        ("-", "hyphen alone"),
        ("OS ID", "inner space"),
        (" OS_ID", "leading space"),
        ("OS_ID ", "trailing space"),
        ("OS_ID\n", "trailing newline"),
        ("OS_ID\t", "trailing tab"),
        ("OS.ID", "dot"),
        ("OS=ID", "equals sign"),
        ("OS/ID", "slash"),
        ("ÄPFEL", "non-ASCII letter"),
        ("\u0131d", "dotless i, which upper-cases to ASCII I"),
        ("\ufb00", "ff ligature, which upper-cases to ASCII FF"),
        ("\u017f", "long s, which upper-cases to ASCII S"),
        ("K" * (MAX_KEY_LENGTH + 1), "longer than 128 characters"),
    ],
)
def test_a_key_that_is_not_an_identifier_is_refused(spelling, why):
    with pytest.raises(InvalidInput):
        normalize_key(spelling)


@pytest.mark.parametrize("not_text", [None, 42, b"OS_ID"])
def test_a_key_that_is_not_text_is_refused(not_text):
    with pytest.raises(InvalidInput):
        normalize_key(not_text)


# -- values ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "",
        "plain",
        " leading and trailing spaces ",
        "héllo wörld",
        "日本語のホスト",
        "party \U0001f389",
        "a=b=c",
        "YQ==",
        '"double quoted"',
        "'single quoted'",
        "$HOME and ${PATH}",
        "$(rm -rf /)",
        "back\\slash\\n",
        "# not a comment",
        "\u00a0non-breaking space",
        "zero\u200bwidth",
    ],
)
def test_values_without_control_characters_are_accepted_unchanged(value):
    assert validate_value(value) == value


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("line\nbreak", "newline"),
        ("\n", "newline alone"),
        ("carriage\rreturn", "carriage return"),
        ("trailing CR\r", "trailing carriage return"),
        ("nul\x00byte", "NUL"),
        ("tab\there", "tab"),
        ("\x1b[31mred", "ESC"),
        ("del\x7f", "DEL"),
        ("next\x85line", "C1 next line"),
        ("line\u2028separator", "Unicode line separator"),
        ("para\u2029separator", "Unicode paragraph separator"),
        ("lone \ud800 surrogate", "lone high surrogate"),
        ("lone \udfff surrogate", "lone low surrogate"),
    ],
)
def test_values_with_control_characters_are_refused(value, why):
    with pytest.raises(InvalidInput, match="control character"):
        validate_value(value)


@pytest.mark.parametrize("not_text", [None, 1, b"bytes"])
def test_a_value_that_is_not_text_is_refused(not_text):
    with pytest.raises(InvalidInput):
        validate_value(not_text)


_E_ACUTE = "\u00e9"  # two bytes in UTF-8
_EURO = "\u20ac"  # three bytes in UTF-8
_PARTY = "\U0001f389"  # four bytes in UTF-8


@pytest.mark.parametrize(
    ("value", "utf8_bytes"),
    [
        ("a" * MAX_VALUE_BYTES, MAX_VALUE_BYTES),
        (_E_ACUTE * (MAX_VALUE_BYTES // 2), MAX_VALUE_BYTES),
        (_EURO * (MAX_VALUE_BYTES // 3) + "a", MAX_VALUE_BYTES),
        (_PARTY * (MAX_VALUE_BYTES // 4), MAX_VALUE_BYTES),
    ],
)
def test_a_value_of_exactly_64_kib_in_utf8_is_accepted(value, utf8_bytes):
    assert len(value.encode("utf-8")) == utf8_bytes
    assert validate_value(value) == value


@pytest.mark.parametrize(
    ("value", "utf8_bytes"),
    [
        ("a" * (MAX_VALUE_BYTES + 1), MAX_VALUE_BYTES + 1),
        (_E_ACUTE * (MAX_VALUE_BYTES // 2) + "a", MAX_VALUE_BYTES + 1),
        (_EURO * (MAX_VALUE_BYTES // 3) + "aa", MAX_VALUE_BYTES + 1),
        (_PARTY * (MAX_VALUE_BYTES // 4) + "a", MAX_VALUE_BYTES + 1),
        (_EURO * (MAX_VALUE_BYTES // 3 + 1), MAX_VALUE_BYTES + 2),
    ],
)
def test_a_value_one_byte_over_64_kib_in_utf8_is_refused(value, utf8_bytes):
    assert len(value.encode("utf-8")) == utf8_bytes
    with pytest.raises(InvalidInput, match="larger than"):
        validate_value(value)


# -- cluster names ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "default", "lab-1", "rack7", "a" + "b" * 62])
def test_cluster_names_matching_the_grammar_are_accepted(name):
    assert validate_cluster(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("1lab", "leading digit"),
        ("-lab", "leading hyphen"),
        ("Lab", "upper case"),
        ("lab_1", "underscore"),
        ("lab 1", "space"),
        ("lab.1", "dot"),
        ("..", "parent directory"),
        ("lab/../x", "path traversal"),
        ("lab\n", "trailing newline"),
        ("lab\x00", "trailing NUL"),
        ("läb", "non-ASCII"),
        ("a" * 64, "longer than 63 characters"),
        (None, "not text"),
    ],
)
def test_cluster_names_outside_the_grammar_are_refused(name, why):
    with pytest.raises(InvalidInput):
        validate_cluster(name)


# -- OS ids ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spelling", "os_id", "stem"),
    [
        ("x86_64:rocky:10", "x86_64:rocky:10", "x86_64_rocky_10"),
        ("X86_64:Rocky:10", "x86_64:rocky:10", "x86_64_rocky_10"),
        (" x86_64:rocky:10 ", "x86_64:rocky:10", "x86_64_rocky_10"),
        ("aarch64:rocky-linux:9.4", "aarch64:rocky-linux:9.4", "aarch64_rocky-linux_9.4"),
        ("x86_64:alpine:3.20.1", "x86_64:alpine:3.20.1", "x86_64_alpine_3.20.1"),
        ("riscv64:debian:trixie", "riscv64:debian:trixie", "riscv64_debian_trixie"),
    ],
)
def test_os_ids_normalise_and_map_to_a_file_stem_and_back(spelling, os_id, stem):
    assert normalize_os_id(spelling) == os_id
    assert os_id_to_stem(spelling) == stem
    assert os_stem_to_id(stem) == os_id


@pytest.mark.parametrize(
    ("spelling", "why"),
    [
        ("", "empty"),
        ("x86_64:rocky", "two parts"),
        ("x86_64:rocky:10:extra", "four parts"),
        (":rocky:10", "empty arch"),
        ("x86_64::10", "empty name"),
        ("x86_64:rocky:", "empty version"),
        ("x86_64:rocky_linux:10", "underscore in the name would not map back from a stem"),
        ("x86_64:rocky:10_1", "underscore in the version would not map back from a stem"),
        ("x86_64:ro/cky:10", "slash"),
        ("x86_64:..:10", "parent directory"),
        ("x86_64:rocky:../10", "path traversal"),
        ("x86_64:rocky:1 0", "inner space"),
        ("x86_64:rocky:10\x00", "NUL"),
        ("x86_64:rocky:" + "1" * 120, "longer than 128 characters"),
        (None, "not text"),
    ],
)
def test_os_ids_outside_the_grammar_are_refused(spelling, why):
    with pytest.raises(InvalidInput):
        normalize_os_id(spelling)


@pytest.mark.parametrize(
    "stem", ["", "rocky", "rocky_10", "x86_64_rocky_", "x86_64__10", "x86_64_ro cky_10"]
)
def test_a_file_stem_that_is_not_an_os_record_is_refused(stem):
    with pytest.raises(InvalidInput):
        os_stem_to_id(stem)


# -- sensitive keys --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("ROOT_PASSWORD", True),
        ("root_password", True),
        ("PASSWORD_HASH", True),
        ("API_TOKEN", True),
        ("TOKEN", True),
        ("CLIENT_SECRET", True),
        ("SECRET_SAUCE", True),
        ("SSH_PRIVATE_KEY", True),
        ("KEY", True),
        ("SSH_KEY_FILE", True),
        ("HOSTNAME", False),
        ("IP", False),
        ("OS_ID", False),
        ("STATE", False),
        ("UPDATED", False),
        ("KEYMAP", False),
        ("KEYBOARD_LAYOUT", False),
        ("PASS", False),
    ],
)
def test_sensitive_keys_are_recognised_by_the_default_patterns(key, sensitive):
    assert is_sensitive(key) is sensitive
    assert is_sensitive(key, DEFAULT_SENSITIVE_PATTERNS) is sensitive


@pytest.mark.parametrize(
    ("key", "patterns", "sensitive"),
    [
        ("IPMI_PASS", ("*_PASS",), True),
        ("ipmi_pass", ("*_pass",), True),
        ("ROOT_PASSWORD", ("*_PASS",), False),
        ("ROOT_PASSWORD", (), False),
    ],
)
def test_sensitive_patterns_can_be_replaced(key, patterns, sensitive):
    assert is_sensitive(key, patterns) is sensitive


# -- the shortcuts give the general rules' verdicts --------------------------------------------


def _value_verdict_by_category(value: str) -> bool:
    """The rule as docs/storage.md states it: no Cc, Cs, Zl or Zp character, at most 64 KiB."""
    if any(unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp") for ch in value):
        return False
    return len(value.encode("utf-8", "surrogatepass")) <= 64 * 1024


@given(value=st.one_of(st.text(), st.text(alphabet=st.characters(max_codepoint=0x7f))))
@example(value="x" * 65536)
@example(value="x" * 65537)
@example(value="\x7f")
@example(value="a\u2028b")
def test_the_printable_ascii_shortcut_gives_the_per_character_verdict(value):
    try:
        validate_value(value)
        accepted = True
    except InvalidInput:
        accepted = False
    assert accepted == _value_verdict_by_category(value)


@given(key=st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,30}", fullmatch=True),
       patterns=st.lists(st.sampled_from(["*SECRET*", "*PASSWORD*", "*TOKEN*", "*KEY", "*_KEY_*",
                                          "IPMI_*", "?OOT_PW", "[AB]*", "*"]), max_size=4))
@example(key="ssh_host_key", patterns=["*KEY"])
@example(key="KEYBOARD", patterns=["*KEY"])
def test_sensitive_patterns_match_as_fnmatch_would(key, patterns):
    expected = any(fnmatch.fnmatchcase(key.upper(), p.upper()) for p in patterns)
    assert is_sensitive(key, patterns) == expected
    assert is_sensitive(key, tuple(patterns)) == expected


@pytest.mark.parametrize("name, hostname, domain", [
    ("sch-001", True, True),
    ("a", True, True),
    ("a" * 63, True, True),
    ("cluster.local", False, True),
    ("a-b.c-d.example", False, True),
    ("", False, False),
    ("a" * 64, False, False),
    ("-a", False, False),
    ("a-", False, False),
    ("Sch-001", False, False),  # callers lower-case first; the patterns take lower case only
    ("a_b", False, False),
    ("a..b", False, False),
    (".a", False, False),
    ("a.", False, False),
    ("a\n", False, False),
    ("a b", False, False),
])
def test_hostname_and_domain_patterns(name: str, hostname: bool, domain: bool) -> None:
    assert bool(HOSTNAME_PATTERN.fullmatch(name)) is hostname
    assert bool(DOMAIN_PATTERN.fullmatch(name)) is domain


def test_spellings_keep_only_valid_non_canonical_names() -> None:
    assert spellings("virtualization_status Storage0_IP STATE bad-name $(x) ünï") == {
        "VIRTUALIZATION_STATUS": "virtualization_status", "STORAGE0_IP": "Storage0_IP"}
    assert spellings(None) == {}


def test_respelled_remembers_the_latest_spelling_and_forgets_on_unset() -> None:
    assert respelled(None, "storage0_ip") == "storage0_ip"
    assert respelled("storage0_ip", "virtualization_status") == \
        "storage0_ip virtualization_status"
    assert respelled("storage0_ip", "STORAGE0_IP") is None
    assert respelled("storage0_ip", "Storage0_Ip") == "Storage0_Ip"
    assert respelled("storage0_ip note", "storage0_ip", removed=True) == "note"
