"""iPXE templates: compiled once per process, never checked against their files again."""

from __future__ import annotations

import os

import pytest

from hps_api.render import ipxe


def test_compile_all_compiles_every_template_under_ipxe() -> None:
    names = sorted(p.name for p in ipxe.IPXE_DIR.glob("*.ipxe"))
    assert ipxe.compile_all() == len(names) > 0
    env = ipxe.environment()
    assert len(env.cache) >= len(names)
    assert all(env.get_template(name) is env.get_template(name) for name in names)


def test_a_compiled_template_renders_without_looking_at_its_file(monkeypatch) -> None:
    ipxe.compile_all()

    def no_file_access(*args: object, **kwargs: object) -> None:
        raise AssertionError("a template file was looked at after compilation")

    monkeypatch.setattr(os.path, "getmtime", no_file_access)
    monkeypatch.setattr(os, "stat", no_file_access)
    script = ipxe.render("reply.ipxe", {"text": "INSTALLED"})
    assert "set hps_reply INSTALLED" in script


def test_creating_the_app_compiles_the_templates(settings) -> None:
    from hps_api import create_app

    ipxe.environment.cache_clear()
    create_app(settings)
    assert len(ipxe.environment().cache) >= len(list(ipxe.IPXE_DIR.glob("*.ipxe")))


@pytest.mark.parametrize("value", ["a\nb", "${net0/mac}", "\x7f"])
def test_values_that_could_become_script_are_refused(value: str) -> None:
    from hps_api.errors import InvalidInput

    with pytest.raises(InvalidInput):
        ipxe.ipxe_value(value)


def _neutralised_char_by_char(value: str) -> str:
    """ipxe_text's rules applied without its shortcut for plain text."""
    text = "".join(ch if ch.isprintable() and (ch.isascii() or not ch.isspace()) else " "
                   for ch in value)
    words = [ipxe.SEPARATORS.get(w, w) for w in text.replace("${", "$ {").split(" ")]
    shown = " ".join(words)
    return "_" + shown[1:] if shown.startswith("-") else shown


@pytest.mark.parametrize("text", ["INSTALLED", "a b", "-x", "a ; b", "x && y", "a || b", "${x}",
                                  "tab\there", "é", "no\u00a0break", "line\u2028sep", "", " ",
                                  ";", "a;b", "$ {", "ok."])
def test_plain_text_shortcut_gives_what_the_rules_give(text: str) -> None:
    assert ipxe.ipxe_text(text) == _neutralised_char_by_char(text)


@pytest.mark.parametrize("text", ["INSTALLED", "a ; b", "${x}", "-x", "tab\there"])
def test_the_kept_reply_script_is_the_rendered_one(text: str) -> None:
    assert ipxe.render_reply(text) == ipxe.render("reply.ipxe", {"text": text})


def test_a_kept_render_is_the_render_of_the_same_values() -> None:
    """`render` keeps scripts by the values of the names a template uses: a value it does not
    use changes nothing, one it uses gives a new script, and a type that renders differently is
    a different value."""
    context = {"base_url": "http://10.99.0.1", "mac": "525400aabb01", "hostname": "sch-001",
               "state": "INSTALLED", "method": "exit", "session": "a1b2c3"}
    first = ipxe.render("localboot.ipxe", context)
    assert ipxe.render("localboot.ipxe", {**context, "session": "ffffff"}) is first
    other = ipxe.render("localboot.ipxe", {**context, "hostname": "sch-002"})
    assert "sch-002" in other and other != first
    assert ipxe.render("reply.ipxe", {"text": True}) != ipxe.render("reply.ipxe", {"text": 1})
    ipxe._renders.clear()
    assert ipxe.render("localboot.ipxe", context) == first


def test_a_template_that_includes_another_is_never_kept(tmp_path, monkeypatch) -> None:
    from jinja2 import DictLoader

    env = ipxe.environment()
    monkeypatch.setattr(env, "loader", DictLoader({
        "outer.ipxe": "#!ipxe\n{% include 'inner.ipxe' %}\n", "inner.ipxe": "echo {{ name }}\n"}))
    assert ipxe._names_used(env, "outer.ipxe") is None
    assert ipxe.render("outer.ipxe", {"name": "a"}) == "#!ipxe\necho a\n"
    assert ipxe.render("outer.ipxe", {"name": "b"}) == "#!ipxe\necho b\n"
