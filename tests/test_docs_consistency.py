"""The docs say what the code does: every finding code the code can emit is in the README's findings tables
(and no table lists one it cannot), every `tfgate ...` line in the README names a real command and real
options, and DEVELOPERS.md's layout table names every module. Cheap: no subprocess, no Terraform."""

from __future__ import annotations

import ast
import re

import typer

from tfgate.cli import app

from .conftest import REPO

README = (REPO / "README.md").read_text()
PACKAGE = REPO / "tfgate"
#: The calls that make a Finding whose first argument is its code (state/__init__.py's helpers too).
FINDING_MAKERS = {"Finding", "_f", "_block"}


def _emitted_codes() -> dict[str, str]:
    codes: dict[str, str] = {}
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        if "Finding" not in source:
            continue
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
            first = node.args[0] if node.args else None
            if name in FINDING_MAKERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                codes[first.value] = str(path.relative_to(REPO))
    return codes


def _section(title: str) -> str:
    return README.split(title, 1)[1].split("\n### ", 1)[0]


def _table_codes() -> set[str]:
    tables = _section("### Plan findings") + _section("### State integrity")
    return set(re.findall(r"^\| `([a-z_]+)` \|", tables, re.MULTILINE))


def test_every_finding_code_is_in_the_readme_tables() -> None:
    emitted = _emitted_codes()
    assert len(emitted) >= 15  # the walk found the makers (a renamed helper would silently find nothing)
    documented = _table_codes()
    missing = {code: where for code, where in emitted.items() if code not in documented}
    assert not missing, f"finding codes the README's findings tables do not list: {missing}"
    stale = documented - set(emitted)
    assert not stale, f"codes in the README's findings tables that no code emits: {sorted(stale)}"


def _readme_tfgate_lines() -> list[str]:
    blocks = re.findall(r"```[a-z]*\n(.*?)```", README, re.DOTALL)
    lines = [line for block in blocks for line in block.splitlines()]
    inline = re.sub(r"```[a-z]*\n.*?```", "", README, flags=re.DOTALL)
    return lines + re.findall(r"`(tfgate [^`]+)`", inline)


def test_every_readme_tfgate_command_and_option_exists() -> None:
    root = typer.main.get_command(app)
    checked = 0
    problems = []
    for line in _readme_tfgate_lines():
        for match in re.finditer(r"(?:^|[\s;&|(`])tfgate[ \t]+(.*)", line):
            segment = re.split(r"\|\||&&|[|;#]", match.group(1))[0]
            words = segment.replace("[", " ").replace("]", " ").split()
            command, path = root, []
            while words and hasattr(command, "commands") and words[0] in command.commands:
                command = command.commands[words[0]]
                path.append(words.pop(0))
            if hasattr(command, "commands"):
                continue  # prose ("tfgate applies exactly it"), not a command line
            options = {
                o
                for p in command.params
                for o in [*getattr(p, "opts", []), *getattr(p, "secondary_opts", [])]
            }
            for word in words:
                if word == "--":
                    break  # Terraform's arguments follow
                name = word.split("=", 1)[0].rstrip(",.)")
                for part in name.split("/") if name.startswith("--report") else [name]:
                    if re.fullmatch(r"--?[A-Za-z][\w-]*", part) and part not in options:
                        problems.append(f"tfgate {' '.join(path)}: no option {part} ({line.strip()[:120]})")
            checked += 1
    assert checked > 40
    assert not problems, "\n".join(problems)


def test_developers_layout_names_every_module() -> None:
    text = (REPO / "DEVELOPERS.md").read_text()
    table = text.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.name in ("__init__.py", "__main__.py"):
            continue
        if len(rel.parts) == 1:
            where = rows  # a top-level module: anywhere in the table
        else:
            where = [r for r in rows if f"`tfgate/{rel.parts[0]}/`" in r.split("|")[1]]
            if len(rel.parts) > 2:  # a subpackage (agents/adapters/): the row names the folder
                if not any(f"`{rel.parts[1]}/`" in r for r in where):
                    missing.append(str(rel))
                continue
        if not any(re.search(rf"`(tfgate/)?{re.escape(rel.stem)}(\.py)?`", r) for r in where):
            missing.append(str(rel))
    assert not missing, f"DEVELOPERS.md's layout table does not name: {missing}"
