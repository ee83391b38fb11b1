"""The interactive wizard behind `hps-api cluster configure`: steps are data, this is the engine.

The steps live in `cluster-config/wizard/*.toml` (asked in file-name order; the format is
described at the top of the first file). At every prompt:

- Enter keeps the value in brackets: the current one, else the step's or the key's default;
- `?` prints the step's help and the field's;
- `-` clears an optional key;
- anything else goes through the field's validator (`hps_api.model.cluster_keys.VALIDATORS`). An
  invalid answer is asked again with the reason: a typo never becomes an empty value.

Once every field of a step is answered, the step's cross-field check runs (`CHECKS`: IPS inside
the network, range inside the network and not containing the IPS, storage gateway inside its
network); when it fails, the wizard says why and asks again from the field the check blames.
The wizard itself never writes: it returns a Plan (the changes, and the values read at the start
for the `expect` of one atomic update), which the command shows, confirms and commits.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from hps_api.errors import InvalidInput
from hps_api.ids import is_sensitive, validate_value
from hps_api.model import cluster_keys, resources
from hps_api.model.cluster_keys import (
    CHECKS,
    MAX_STORAGE_NETWORKS,
    SUGGESTIONS,
    VALIDATORS,
    InvalidKey,
    KeyContext,
    OsRecords,
)

#: the shipped steps; not looked for in the site directory: they name the validators and checks
#: of this version's code, so they change with it
WIZARD_DIR = resources.shipped("cluster-config/wizard")
HELP = "?"
CLEAR = "-"
MASK = "********"
#: what a repeated group may be repeated over, and what its fields' `{names}` are then
EACH = ("host_type",)
CHOICES = ("os_ids",)


class Terminal(Protocol):
    """Where the wizard asks and talks: `ask` raises EOFError (Ctrl-D) or KeyboardInterrupt."""

    def ask(self, prompt: str) -> str:
        """Show the prompt and return the line typed, without its newline."""
        ...

    def say(self, text: str) -> None:
        """Print a line."""
        ...


class Console:
    """The process's own terminal: `input()` and `print()`."""

    def ask(self, prompt: str) -> str:
        """Return a line read after the prompt (EOFError on Ctrl-D, KeyboardInterrupt on ^C)."""
        return input(prompt)

    def say(self, text: str) -> None:
        """Print a line at once."""
        print(text, flush=True)


@dataclass(frozen=True)
class Field:
    """One prompt: the key it sets and how (see the header of the first step file)."""

    key: str
    prompt: str
    validator: str
    help: str = ""
    required: bool = False
    default: str | None = None
    default_rule: str | None = None
    default_from: str | None = None
    choices: str | None = None

    def named(self, names: Mapping[str, str]) -> Field:
        """Return the field with `{i}`, `{type}`, `{description}` filled in its texts."""
        return replace(self, key=self.key.format_map(names),
                       prompt=self.prompt.format_map(names), help=self.help.format_map(names),
                       default_from=(self.default_from or "").format_map(names) or None)


@dataclass(frozen=True)
class Repeat:
    """Fields asked once per instance: `count` names the key holding how many (`{i}` = 0..n-1),
    or `each = "host_type"` repeats them per host type (`{type}`, `{description}`)."""

    fields: tuple[Field, ...]
    title: str = ""
    count: str | None = None
    each: str | None = None
    check: str | None = None


@dataclass(frozen=True)
class Step:
    """One concern of the wizard: its fields, its cross-field check, an optional repeat."""

    name: str
    title: str
    help: str
    fields: tuple[Field, ...] = ()
    check: str | None = None
    repeat: Repeat | None = None


@dataclass(frozen=True)
class Plan:
    """What the wizard would write: `changes` (None unsets) and `expect`, the value each asked
    key had when the wizard started (None: not set)."""

    changes: dict[str, str | None]
    expect: dict[str, str | None]


# -- the steps, as data --------------------------------------------------------------------------

def load_steps(directory: Path = WIZARD_DIR) -> tuple[Step, ...]:
    """Return the steps of `directory/*.toml` in file-name order; InvalidInput names a bad file
    (unknown field, validator, check or rule, or a validator that is not the key's own)."""
    return tuple(_load_step(path) for path in sorted(directory.glob("*.toml")))


def _load_step(path: Path) -> Step:
    with path.open("rb") as handle:
        raw = tomllib.load(handle)
    try:
        step = Step(path.stem, str(raw.pop("title")), str(raw.pop("help", "")),
                    _fields(raw.pop("field", [])), raw.pop("check", None),
                    _repeat(raw.pop("repeat", None)))
        if raw:
            raise ValueError(f"unknown setting(s) {', '.join(raw)}")
        _verify(step)
    except (KeyError, TypeError, ValueError) as err:
        raise InvalidInput(f"wizard step {path}: {err}") from None
    return step


def _fields(raw: list[dict[str, Any]]) -> tuple[Field, ...]:
    return tuple(Field(**item) for item in raw)


def _repeat(raw: dict[str, Any] | None) -> Repeat | None:
    if raw is None:
        return None
    return Repeat(_fields(raw.pop("field", [])), **raw)


def _verify(step: Step) -> None:
    """Raise ValueError unless every name a step uses exists and agrees with cluster_keys."""
    _known(step.check, CHECKS, "check")
    fields = list(step.fields)
    if step.repeat is not None:
        _known(step.repeat.check, CHECKS, "check")
        _known(step.repeat.each, EACH, "each")
        if (step.repeat.count is None) == (step.repeat.each is None):
            raise ValueError("a repeat needs exactly one of count and each")
        fields += [f.named({"i": "0", "type": "SCH", "description": ""})
                   for f in step.repeat.fields]
    for field in fields:
        _known(field.validator, VALIDATORS, "validator")
        _known(field.default_rule, SUGGESTIONS, "default_rule")
        _known(field.choices, CHOICES, "choices")
        spec = cluster_keys.spec_for(field.key)
        if spec is not None and spec.validator != field.validator:
            raise ValueError(f"{field.key} is validated by {spec.validator!r}, "
                             f"not {field.validator!r}")


def _known(name: str | None, names: Sequence[str] | Mapping[str, object], what: str) -> None:
    if name is not None and name not in names:
        raise ValueError(f"unknown {what} {name!r}")


# -- the engine ----------------------------------------------------------------------------------

class Wizard:
    """Asks the steps' fields on a terminal and returns a Plan; reads and writes no store."""

    def __init__(self, terminal: Terminal, current: Mapping[str, str], os_records: OsRecords,
                 host_types: Mapping[str, str]) -> None:
        self.terminal = terminal
        self.current = dict(current)
        self.os_records = os_records
        self.host_types = host_types
        self.answers: dict[str, str | None] = {}

    def run(self, steps: Sequence[Step]) -> Plan:
        """Ask every step and return the Plan; InvalidKey if the whole record is inconsistent."""
        for step in steps:
            self._step(step)
        cluster_keys.check_all(self.merged())
        changes = {k: v for k, v in self.answers.items() if self.current.get(k) != v}
        return Plan(changes, {key: self.current.get(key) for key in self.answers})

    def merged(self) -> dict[str, str]:
        """Return the record as it would be with the answers so far."""
        values = {**self.current, **self.answers}
        return {k: v for k, v in values.items() if v is not None}

    def _step(self, step: Step) -> None:
        self.terminal.say(f"\n== {step.title} ==")
        self._group(step, step.fields, step.check, "")
        if step.repeat is not None:
            for names in self._instances(step.repeat):
                fields = tuple(f.named(names) for f in step.repeat.fields)
                self.terminal.say(f"-- {step.repeat.title.format_map(names)} --")
                self._group(step, fields, step.repeat.check, names.get("i") or names["type"])
            if step.repeat.count is not None:
                self._clear_beyond(step.repeat, step.repeat.count)

    def _instances(self, repeat: Repeat) -> list[dict[str, str]]:
        if repeat.count is not None:
            return [{"i": str(i)} for i in range(self._count(repeat.count))]
        return [{"type": name, "description": text} for name, text in self.host_types.items()]

    def _count(self, key: str) -> int:
        text = self.merged().get(key, "0")
        return int(text) if text.isdigit() else 0

    def _clear_beyond(self, repeat: Repeat, count_key: str) -> None:
        """Unset the keys of instances beyond the count (fewer storage networks than before)."""
        for index in range(self._count(count_key), MAX_STORAGE_NETWORKS):
            for field in repeat.fields:
                key = field.named({"i": str(index)}).key
                if key in self.current:
                    self.answers[key] = None

    def _group(self, step: Step, fields: tuple[Field, ...], check: str | None,
               instance: str) -> None:
        """Ask the fields, then the check; ask again from the blamed field until it passes."""
        todo = fields
        while todo:
            for field in todo:
                self.answers[field.key] = self._ask(step, field)
            todo = self._failing(fields, check, instance)

    def _failing(self, fields: tuple[Field, ...], check: str | None,
                 instance: str) -> tuple[Field, ...]:
        """Return the fields to ask again: none when the check passes, else from the blamed one."""
        if check is None:
            return ()
        try:
            CHECKS[check](self.merged(), instance)
        except InvalidKey as err:
            self.terminal.say(f"  ! {err.reason}")
            keys = [field.key for field in fields]
            return fields[keys.index(err.key):] if err.key in keys else fields
        return ()

    def _ask(self, step: Step, field: Field) -> str | None:
        """Return the accepted answer for one field (None: not set)."""
        offered = self._offered(field)
        if field.choices is not None:
            self.terminal.say(self._choices())
        while True:
            shown = "not set" if offered is None else offered
            text = self.terminal.ask(f"{field.prompt} ({field.key}) [{shown}]: ").strip()
            if text == HELP:
                self.terminal.say(f"{step.help}\n{field.key}: {field.help}".strip())
                continue
            try:
                return self._answer(field, text, offered)
            except InvalidInput as err:
                self.terminal.say(f"  ! {err.reason if isinstance(err, InvalidKey) else err}")

    def _answer(self, field: Field, text: str, offered: str | None) -> str | None:
        if text == CLEAR or not (text or offered is not None):
            if field.required:
                raise InvalidInput(f"{field.key} is required; type a value")
            return None
        value = validate_value(text or offered or "")
        return VALIDATORS[field.validator](value, KeyContext(field.key, self.os_records))

    def _offered(self, field: Field) -> str | None:
        """Return the value Enter keeps: the answer, current value, default or suggestion."""
        for source in (self.answers, self.current):
            if field.key in source:
                return source[field.key]
        if field.default is not None:
            return field.default
        if field.default_rule is not None:
            return SUGGESTIONS[field.default_rule](self.merged().get(field.default_from or ""))
        spec = cluster_keys.spec_for(field.key)
        return None if spec is None else spec.default

    def _choices(self) -> str:
        usable = [f"{os_id} ({record.get('HPS_TYPES', '')})"
                  for os_id, record in sorted(self.os_records.items())
                  if record.get("STATUS", "").lower() != "retired"]
        if not usable:
            return "  no OS registered yet (hps-api os add); Enter leaves it unset"
        return "  registered: " + ", ".join(usable)


# -- after the questions -------------------------------------------------------------------------

def summary_lines(plan: Plan, patterns: Sequence[str]) -> list[str]:
    """Return one `KEY: old -> new` line per change; values of sensitive keys are masked."""
    def shown(key: str, value: str | None) -> str:
        if value is None:
            return "(not set)"
        return MASK if is_sensitive(key, patterns) else value or '""'

    return [f"{key}: {shown(key, plan.expect.get(key))} -> {shown(key, new)}"
            for key, new in plan.changes.items()]


def confirm(terminal: Terminal, count: int) -> bool:
    """Return True when the operator answers yes to applying `count` changes (default: no)."""
    question = "Apply this 1 change?" if count == 1 else f"Apply these {count} changes?"
    return terminal.ask(f"{question} [y/N] ").strip().lower() in ("y", "yes")
