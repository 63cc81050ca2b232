"""Variables a command line sets: as a prefix (`X=1 cmd`), bare (`X=1`), behind `env`/`sudo`/`docker -e`, or by
name through a builtin (`export`, `read`, `declare`, `printf -v`). The guard blocks the ones that steer
Terraform or tfgate (`TF_CLI_ARGS*`, `TFGATE_*`), notes `PATH` and `IFS` changes, and judges the value of
variables that name a command (`GIT_PAGER`, `GIT_EXTERNAL_DIFF`, `LESSOPEN` ...)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

from tfgate.agents.programs import program_name
from tfgate.agents.words import _SETTERS, _STEERING_NAME, lazy_re, record

_ASSIGN = lazy_re(r"^([A-Za-z_][A-Za-z0-9_]*)(\[[^\]]*\])?\+?=(.*)$", re.DOTALL)
_NAME = lazy_re(r"^([A-Za-z_][A-Za-z0-9_]*)(\+?=(.*))?$", re.DOTALL)


@record
class Setting:
    """One variable set by a simple command: value None when set by name (`read X`, `export X`)."""

    name: str
    value: str | None
    #: Only for the command it prefixes (`IFS= read -r line`), not for the rest of the line.
    prefix: bool = False


def settings(assignments: Sequence[str], command: Sequence[str]) -> Iterator[Setting]:
    """Every variable this simple command sets (leading assignments, NAME=value words behind any wrapper,
    builtins that set or export by name). Printing or `declare -p` sets nothing."""
    for word in assignments:
        m = _ASSIGN.match(word)
        if m:
            yield Setting(m.group(1), m.group(3), prefix=bool(command))
    for word in command[1:]:
        m = _ASSIGN.match(word)
        if m:  # env X=..., sudo X=..., docker run -e X=...
            yield Setting(m.group(1), m.group(3), prefix=True)
    names = [program_name(w) for w in command]
    for k, name in enumerate(names):
        if name not in _SETTERS:
            continue
        rest = command[k + 1 :]
        if name == "printf":
            named = [rest[j + 1] for j, a in enumerate(rest[:-1]) if a == "-v"]
        elif name in ("declare", "typeset", "local", "readonly") and any(
            a.startswith("-") and "p" in a for a in rest
        ):
            named = []
        elif name in ("env", "set"):
            named = []  # env sets only NAME=value words (above); `set` sets no named variable
        else:
            named = [a for a in rest if not a.startswith("-")]
        for word in named:
            m = _NAME.match(word)
            if m and m.group(2) is None:
                yield Setting(m.group(1), None)
            elif m:
                yield Setting(m.group(1), m.group(3))


def steering(found: Sequence[Setting]) -> str | None:
    """A TF_CLI_ARGS* / TFGATE_* variable given a value (clearing it with `X=` is harmless)."""
    for s in found:
        if _STEERING_NAME.match(s.name) and (s.value is None or s.value):
            return s.name
    return None
