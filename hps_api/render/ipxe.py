"""iPXE scripts from the templates in `ipxe/` (Jinja2, strict: a missing variable is a bug).

A template in the site directory's `ipxe/` wins over the shipped one of the same name (see
hps_api.model.resources).

Every value put into a script goes through one of two filters, so data can never become script.
iPXE splits a line into words at white space, runs `${...}` expansions, and treats the words
`;`, `&&` and `||` as command separators (`set x a ; chain http://elsewhere/` is two commands).

- `ipxe` (URLs, ids, numbers, kernel arguments: values with a structure) refuses a value with
  control characters, `${`, or a separator word (InvalidInput: the request fails, nothing runs).
- `text` (free text for `echo`, `menu`, `item` and `set`: host names, notes, hardware facts,
  messages) never fails: control characters become spaces, `${` becomes `$ {`, a separator word
  becomes a harmless one (`;` -> `,`, `&&` -> `and`, `||` -> `or`), and a leading `-` becomes
  `_` so text cannot be read as an option of the command it follows.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, meta, nodes

from hps_api.errors import InvalidInput
from hps_api.model import resources

#: the shipped templates (a site's own `ipxe/` is searched before them)
IPXE_DIR = resources.shipped("ipxe")
#: the words iPXE reads as command separators, and what free text shows instead
SEPARATORS = {";": ",", "&&": "and", "||": "or"}


def ipxe_value(value: object) -> str:
    """Return a value safe to place in an iPXE script line; InvalidInput when it is not."""
    text = str(value)
    if "${" in text or any(ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InvalidInput(f"value not safe for an iPXE script: {text[:40]!r}")
    if any(word in SEPARATORS for word in text.split()):
        raise InvalidInput(f"value holds an iPXE command separator: {text[:40]!r}")
    return text


def ipxe_text(value: object) -> str:
    """Return free text for an `echo`/`menu`/`item`/`set` line, neutralised (see above)."""
    text = str(value)
    if _plain_text(text):  # nothing to neutralise: the common case, without the loops below
        return text
    text = "".join(ch if ch.isprintable() and (ch.isascii() or not ch.isspace()) else " "
                   for ch in text)
    words = [SEPARATORS.get(word, word) for word in text.replace("${", "$ {").split(" ")]
    shown = " ".join(words)
    return "_" + shown[1:] if shown.startswith("-") else shown


def _plain_text(text: str) -> bool:
    """Return True when `ipxe_text` would return `text` unchanged: printable ASCII (no control
    characters, no white space but the plain space), no `${`, no separator word, no leading
    `-`."""
    return (text.isascii() and text.isprintable() and "${" not in text
            and not text.startswith("-")
            and not any(word in SEPARATORS for word in text.split(" ")))


@lru_cache(maxsize=1)
def environment() -> Environment:
    """Return the template environment (compiled templates are cached per process)."""
    # iPXE scripts are not HTML: values are checked by the `ipxe` filter instead of escaped.
    # auto_reload=False: the templates are read once per process (site and shipped alike), so
    # a compiled template is never checked against its file again (that was a stat per render).
    env = Environment(
        loader=FileSystemLoader([str(path) for path in resources.search_path("ipxe")]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701
        auto_reload=False,
    )
    env.filters["ipxe"] = ipxe_value
    env.filters["text"] = ipxe_text
    return env


#: rendered scripts kept per process (then it starts again); see `render`
RENDERS_KEPT = 4096
_renders: dict[tuple[object, ...], str] = {}
_REACHES_OUT = (nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)


def render(template: str, context: dict[str, Any]) -> str:
    """Return the rendered iPXE script of a template under `ipxe/`.

    Kept per process by the values of the names the template uses: its output depends on those
    alone (templates are read once per process, see `environment`), and a boot wave asks for
    the same script per host again and again, while the context also carries values this
    template never shows (a new boot session at every `init` of an installed host). A template
    that includes, imports or extends another, or a context value that cannot be a key (a
    menu's list of items), is rendered every time; so is one that fails.
    """
    env = environment()
    names = _names_used(env, template)
    if names is not None:
        key: tuple[object, ...] = (env, template, *(
            (type(found), found) for found in (context.get(name, _MISSING) for name in names)))
        try:
            kept = _renders.get(key)
        except TypeError:  # unhashable: a list or a mapping in the context
            return env.get_template(template).render(**context)
        if kept is None:
            kept = env.get_template(template).render(**context)
            if len(_renders) >= RENDERS_KEPT:
                _renders.clear()
            _renders[key] = kept
        return kept
    return env.get_template(template).render(**context)


_MISSING = object()


@lru_cache(maxsize=128)
def _names_used(env: Environment, template: str) -> tuple[str, ...] | None:
    """Return the context names `template` reads, sorted; None when it reaches other templates
    (their names would be missed)."""
    source = env.loader.get_source(env, template)[0] if env.loader else ""
    tree = env.parse(source)
    if any(True for _ in tree.find_all(_REACHES_OUT)):
        return None
    return tuple(sorted(meta.find_undeclared_variables(tree)))


def render_reply(text: str) -> str:
    """Return `reply.ipxe` for `text`: the plain answer to an iPXE client (`set hps_reply`),
    the same few answers (a host's state, `ok`) to every host of a boot wave (kept: `render`).
    """
    return render("reply.ipxe", {"text": text})


def compile_all() -> int:
    """Compile every template under `ipxe/` now, in the environment `render` uses; return how
    many.

    create_app calls it, so gunicorn's preloaded master compiles them once (and finds the names
    each uses, see `render`) and every worker inherits them at fork instead of compiling each on
    its first request.
    """
    env = environment()
    names = env.list_templates(extensions=["ipxe"])
    for name in names:
        env.get_template(name)
        _names_used(env, name)
    return len(names)
