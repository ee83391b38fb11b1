"""Identifiers at the edge of the system: MACs, keys, values, cluster names, OS ids.

Everything that later becomes part of a path or a record line passes through here first, so a
malformed identifier is refused before anything touches the disk.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from collections.abc import Callable, Iterable
from functools import lru_cache

from hps_api.errors import InvalidInput

MAX_KEY_LENGTH = 128
MAX_VALUE_BYTES = 64 * 1024

_MAC_FORMS = (
    re.compile(r"([0-9a-f]{2})(?::([0-9a-f]{2})){5}"),
    re.compile(r"([0-9a-f]{2})(?:-([0-9a-f]{2})){5}"),
    re.compile(r"[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}"),
    re.compile(r"[0-9a-f]{12}"),
)
_KEY = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_CLUSTER = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
#: a host name: one DNS label, lower case (RFC 1123); use with fullmatch
HOSTNAME_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
#: a DNS domain: such labels separated by single dots; use with fullmatch, and MAX_DOMAIN
DOMAIN_PATTERN = re.compile(rf"{HOSTNAME_PATTERN.pattern}(?:\.{HOSTNAME_PATTERN.pattern})*")
MAX_DOMAIN = 253
_OS_ID = re.compile(r"^([a-z0-9][a-z0-9_]*):([a-z0-9][a-z0-9.-]*):([a-z0-9][a-z0-9.-]*)$")
_FORBIDDEN_CATEGORIES = {"Cc", "Cs", "Zl", "Zp"}

DEFAULT_SENSITIVE_PATTERNS = ("*SECRET*", "*PASSWORD*", "*TOKEN*", "*KEY", "*_KEY_*")


#: spellings normalize_mac has accepted, with their answer (at most MACS_KEPT, then it starts
#: again): refusals are never kept, so each is checked and reported in full
MACS_KEPT = 8192
_MACS_SEEN: dict[str, str] = {}


def normalize_mac(text: str) -> str:
    """Return the MAC as 12 lower-case hex digits; raise InvalidInput for anything else.

    Accepts `52:54:00:AA:BB:01`, `52-54-00-aa-bb-01`, `5254.00aa.bb01` and `525400aabb01` (any
    case), exactly as written: surrounding spaces, tabs or newlines are refused (a MAC arriving
    in a URL with `%0a` is not the host it resembles), so a caller that wants to be lenient (a
    pasted command-line argument) strips first. Mixed separators, other lengths,
    multicast/broadcast and all-zero addresses are refused: none of them can be a host's NIC.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"invalid MAC address: {_shown(text)}")
    known = _MACS_SEEN.get(text)
    if known is not None:  # every request names its host's MAC, a boot wave the same few hundred
        return known
    mac = _normalized(text)
    if len(_MACS_SEEN) >= MACS_KEPT:
        _MACS_SEEN.clear()
    _MACS_SEEN[text] = mac
    return mac


def _normalized(text: str) -> str:
    low = text.lower() if len(text) <= 17 else ""
    if not any(form.fullmatch(low) for form in _MAC_FORMS):
        hint = " (surrounding whitespace)" if text[:1].isspace() or text[-1:].isspace() else ""
        raise InvalidInput(f"invalid MAC address: {_shown(text)}{hint}")
    mac = re.sub(r"[^0-9a-f]", "", low)
    if mac == "000000000000" or int(mac[:2], 16) & 1:
        raise InvalidInput(f"not a host MAC address (zero, multicast or broadcast): {text}")
    return mac


def colon_mac(mac12: str) -> str:
    """Return a normalised MAC in the colon form people read (`52:54:00:aa:bb:01`)."""
    return ":".join(mac12[i : i + 2] for i in range(0, 12, 2))


def normalize_key(text: str) -> str:
    """Return the key upper-cased; raise InvalidInput unless it is an identifier."""
    if not isinstance(text, str) or not text:
        raise InvalidInput("key is empty")
    if len(text) > MAX_KEY_LENGTH:
        raise InvalidInput(f"key longer than {MAX_KEY_LENGTH} characters")
    key = text.upper()
    if not text.isascii() or not _KEY.fullmatch(key):
        raise InvalidInput(f"invalid key {_shown(text)}: use letters, digits and _")
    return key


#: names a shell gives a meaning to: set by `eval` of host_get_config, they would change what
#: the old node's script runs (PATH, IFS, PS4 with `set -x`, ENV/BASH_ENV for the next shell...)
SHELL_SPECIAL = frozenset({
    "PATH", "IFS", "ENV", "BASH_ENV", "CDPATH", "HOME", "SHELL", "SHELLOPTS", "BASHOPTS",
    "PROMPT_COMMAND", "PS0", "PS1", "PS2", "PS3", "PS4", "GLOBIGNORE", "EXECIGNORE", "FPATH",
    "TMOUT", "HISTFILE", "HISTCONTROL", "MAIL", "MAILPATH", "MAILCHECK", "OPTIND", "OPTARG",
    "OPTERR", "PPID", "UID", "EUID", "GROUPS", "PWD", "OLDPWD", "TMPDIR", "POSIXLY_CORRECT",
    "INPUTRC", "TERM", "HOSTFILE", "FUNCNEST", "COMP_WORDBREAKS", "NODE_OPTIONS", "GCONV_PATH",
    "LOCPATH", "NLSPATH", "RESOLV_HOST_CONF", "HOSTALIASES", "LOCALDOMAIN", "RES_OPTIONS",
    "MALLOC_CHECK_", "PERL5OPT", "PERL5LIB", "PERLLIB", "RUBYOPT", "RUBYLIB"})
SHELL_SPECIAL_PREFIXES = ("LD_", "BASH_", "DYLD_", "PYTHON", "LC_", "HISTTIME")


def check_host_value(key: str, value: str) -> None:
    """Raise InvalidInput when a host record cannot hold `value` under `key`, whoever writes it.

    HOSTNAME is one DNS label (RFC 1123, any case): it reaches iPXE scripts, dnsmasq's files
    and kickstarts, and a name like `n1 ; chain http://elsewhere/` must never get that far.
    """
    if key == "HOSTNAME" and value and not HOSTNAME_PATTERN.fullmatch(value.lower()):
        raise InvalidInput(f"HOSTNAME {_shown(value)} is not a host name (one DNS label: "
                           "letters, digits and inner '-', at most 63)")


def is_shell_special(key: str) -> bool:
    """Return True for a key whose name a shell, the dynamic loader or an interpreter reads."""
    name = key.upper()
    return name in SHELL_SPECIAL or name.startswith(SHELL_SPECIAL_PREFIXES)


#: the host key that remembers keys a node wrote in another spelling than upper-case
KEY_SPELLINGS = "KEY_SPELLINGS"


def spellings(value: str | None) -> dict[str, str]:
    """Return {canonical key: spelling as written} from a KEY_SPELLINGS value.

    The value is space-separated spellings (`virtualization_status storage0_ip`); anything that
    is not a valid key spelling is ignored, so a hand-edited value cannot emit a bad name.
    """
    found: dict[str, str] = {}
    for word in (value or "").split():
        if word.isascii() and _KEY.fullmatch(word.upper()) and word != word.upper():
            found[word.upper()] = word
    return found


def respelled(value: str | None, written: str, *, removed: bool = False) -> str | None:
    """Return KEY_SPELLINGS after `written` was set (or unset, with `removed`); None if empty.

    Upper-case spellings are the canonical form and are not remembered; the latest write of a
    key decides its spelling.
    """
    known = spellings(value)
    known.pop(written.upper(), None)
    if not removed and written != written.upper():
        known[written.upper()] = written
    return " ".join(known[k] for k in sorted(known)) or None


def validate_value(value: str) -> str:
    """Return the value unchanged; raise InvalidInput if the store cannot hold it.

    Refused: control characters (newline, CR, NUL, tab, ESC, DEL, C1), Unicode line/paragraph
    separators, lone surrogates, and anything above 64 KiB in UTF-8.
    """
    if not isinstance(value, str):
        raise InvalidInput("value must be text")
    if value.isascii() and value.isprintable():
        # The common case, without a per-character lookup: in ASCII, isprintable() is False
        # exactly for the control characters (Cc); the other refused categories are not ASCII.
        if len(value) > MAX_VALUE_BYTES:
            raise InvalidInput(f"value larger than {MAX_VALUE_BYTES} bytes")
        return value
    bad = next((ch for ch in value if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES), None)
    if bad is not None:
        raise InvalidInput(f"value contains a control character (U+{ord(bad):04X})")
    if len(value) > MAX_VALUE_BYTES // 4 and len(value.encode("utf-8")) > MAX_VALUE_BYTES:
        raise InvalidInput(f"value larger than {MAX_VALUE_BYTES} bytes")
    return value


def validate_cluster(name: str) -> str:
    """Return the cluster name; raise InvalidInput unless it matches `^[a-z][a-z0-9-]{0,62}$`."""
    if not isinstance(name, str) or not _CLUSTER.fullmatch(name):
        raise InvalidInput(f"invalid cluster name: {_shown(name)}")
    return name


def normalize_os_id(text: str) -> str:
    """Return the OS id `<arch>:<name>:<version>` lower-cased; raise InvalidInput otherwise."""
    low = text.strip().lower() if isinstance(text, str) else ""
    if len(low) > 128 or not _OS_ID.match(low):
        raise InvalidInput(f"invalid OS id {_shown(text)}: expected <arch>:<name>:<version>")
    return low


def os_id_to_stem(os_id: str) -> str:
    """Return the record file stem for an OS id (`x86_64:rocky:10` -> `x86_64_rocky_10`)."""
    return normalize_os_id(os_id).replace(":", "_")


def os_stem_to_id(stem: str) -> str:
    """Return the OS id for a record file stem; names and versions never contain `_`."""
    parts = stem.rsplit("_", 2)
    if len(parts) != 3:
        raise InvalidInput(f"not an OS record name: {_shown(stem)}")
    return normalize_os_id(":".join(parts))


def is_sensitive(key: str, patterns: Iterable[str] = DEFAULT_SENSITIVE_PATTERNS) -> bool:
    """Return True when the key matches one of the sensitive-name glob patterns."""
    return _sensitive_matcher(tuple(patterns))(key.upper()) is not None


@lru_cache(maxsize=16)
def _sensitive_matcher(patterns: tuple[str, ...]) -> Callable[[str], re.Match[str] | None]:
    """Return one compiled regex for a set of glob patterns (fnmatch would test each in turn)."""
    if not patterns:
        return lambda _key: None
    return re.compile("|".join(fnmatch.translate(p.upper()) for p in patterns)).match


def _shown(text: object) -> str:
    """Return a short, printable rendering of untrusted input for an error message."""
    shown = repr(text)
    return shown if len(shown) <= 60 else shown[:57] + "..."
