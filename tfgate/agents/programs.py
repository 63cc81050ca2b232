"""What one program does: Terraform/OpenTofu/Terragrunt subcommands, tfgate's own commands, wrappers,
shells and interpreters, and where in their arguments a nested command line hides."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence

from tfgate.agents.words import (
    _HELP,
    _PYTHON,
    _SHELLS,
    _STATE_READ,
    _STATE_WRITE,
    _TF_APPLY,
    _TF_NAME,
    _TF_READ_ONLY,
    _TF_STATE_MUTATING,
    _TF_SUBCOMMANDS,
    _TG_NAME,
    _VERSION,
    _WORKSPACE_READ,
    _WORKSPACE_WRITE,
    ALLOW,
    MUTATING,
    SELF_APPROVAL,
    TAMPER,
    UNKNOWN,
    UNRESOLVED,
    Decision,
    _first_operand,
    lazy_re,
    record,
)

# --- analysis ----------------------------------------------------------------------------------------


def program_name(word: str) -> str:
    """Basename of a program word, lower-cased, without a Windows executable suffix."""
    name = re.split(r"[/\\]", word)[-1].lower()
    for suffix in (".exe", ".cmd", ".bat", ".ps1"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _family(word: str) -> str | None:
    name = program_name(word)
    if any(ch in name for ch in "*?["):
        literal = re.split(r"[*?\[]", name, maxsplit=1)[0]
        for real, fam in (("terragrunt", "terragrunt"), ("terraform", "terraform"), ("tofu", "terraform")):
            if fnmatch.fnmatchcase(real, name) or (len(literal) >= 4 and literal.startswith(real)):
                return fam  # terr*form, terraform_1.9*
        return None
    if name.startswith(("terraform", "tofu", "opentofu", "tfgate-terraform")) and _TF_NAME.match(name):
        return "terraform"  # (the prefix test first: the hook compiles a pattern only when one can match)
    if name.startswith("terragrunt") and _TG_NAME.match(name):
        return "terragrunt"
    if name == "tfgate":
        return "tfgate"
    if name in _SHELLS:
        return "shell"
    if name == "eval":
        return "eval"
    if name.startswith("python") and _PYTHON.match(name):
        return "python"
    return None


def _join(words: Sequence[str]) -> str:
    return " ".join(words)


def _block(code: str, reason: str, segment: Sequence[str] | str) -> Decision:
    seg = segment if isinstance(segment, str) else _join(segment)
    return Decision(False, reason, seg, code)


def _apply_reason(seg: str, sub: str) -> str:
    if sub == "destroy" or "-destroy" in seg.split():
        instead = (
            "`tfgate destroy` (it plans the destroy, checks that plan and applies exactly it; or `tfgate plan "
            "-- -destroy`, then `tfgate apply PLANFILE` with the saved plan)"
        )
    else:
        instead = (
            "`tfgate plan` (it saves and checks the plan and prints where it is), then `tfgate apply "
            "PLANFILE` with that file (it applies exactly the checked plan)"
        )
    return (
        f"`{seg}` changes infrastructure without tfgate's gate. Instead run {instead}. If tfgate blocks "
        "it, stop and ask a human to review the plan and sign an approval (`tfgate approve`, the command its "
        "report ends with); do not work around the gate."
    )


def _state_reason(seg: str) -> str:
    return (
        f"`{seg}` modifies Terraform state directly, bypassing tfgate. Do not run it: ask a human to review "
        "and run it, or to sign an approval for it (`tfgate approve`) so it can go through the tfgate shim."
    )


def _unknown_reason(seg: str, sub: str) -> str:
    return (
        f"`{seg}`: tfgate does not know the Terraform subcommand `{sub}`, so it is blocked (fail closed). "
        "Use read-only commands (plan, show, validate, state list) or `tfgate plan` / `tfgate apply`."
    )


@record
class TerraformCommand:
    """What a Terraform argument list does: kind is "read-only", "apply", "destroy", "state" (mutates
    state directly), "test" (applies real infrastructure of its own) or "unknown"; sub is the subcommand (two words for state/workspace); index is where
    the subcommand starts in the arguments (-1 when there is none)."""

    kind: str
    sub: str = ""
    index: int = -1


def classify_terraform(args: Sequence[str]) -> TerraformCommand:
    """Classify Terraform/OpenTofu arguments (everything after the program name). Terraform's flag parser
    reads `--name` as `-name`, so both spellings are judged alike."""
    args = [a[1:] if a.startswith("--") and len(a) > 2 else a for a in args]
    i = 0
    while i < len(args) and args[i].startswith("-"):
        if args[i] in _HELP or args[i] in _VERSION:
            return TerraformCommand("read-only")
        i += 1
    if i == len(args):
        return TerraformCommand("read-only")
    sub, rest = args[i], args[i + 1 :]
    flags = rest[: rest.index("--")] if "--" in rest else rest  # Terraform reads no flags after --
    if any(a in _HELP for a in flags):
        return TerraformCommand("read-only", sub, i)  # help for any subcommand
    if sub == "init" and any(
        a.split("=")[0] in ("-migrate-state", "-force-copy")
        and a.split("=", 1)[-1].lower() not in ("false", "0")
        for a in flags
    ):
        return TerraformCommand("state", "init -migrate-state", i)  # copies state over the new backend's
    if sub == "test":
        return TerraformCommand("test", sub, i)  # runs apply (and destroy) on real infrastructure
    if sub in _TF_READ_ONLY:
        return TerraformCommand("read-only", sub, i)
    if sub == "destroy" or (sub == "apply" and any(a in ("-destroy", "-destroy=true") for a in flags)):
        return TerraformCommand("destroy", sub, i)
    if sub in _TF_APPLY:
        return TerraformCommand("apply", sub, i)
    if sub in _TF_STATE_MUTATING:
        return TerraformCommand("state", sub, i)
    if sub in ("state", "workspace"):
        second = next((a for a in rest if not a.startswith("-")), None)
        read, write = (_STATE_READ, _STATE_WRITE) if sub == "state" else (_WORKSPACE_READ, _WORKSPACE_WRITE)
        if second is None or second in read:
            return TerraformCommand("read-only", f"{sub} {second or ''}".strip(), i)
        return TerraformCommand("state" if second in write else "unknown", f"{sub} {second}", i)
    return TerraformCommand("unknown", sub, i)


def _terraform(args: Sequence[str], segment: Sequence[str]) -> Decision:
    what = classify_terraform(args)
    seg = _join(segment)
    if what.kind == "read-only":
        return ALLOW
    if what.kind in ("apply", "destroy"):
        return _block(MUTATING, _apply_reason(seg, what.sub), seg)
    if what.kind == "state":
        return _block(MUTATING, _state_reason(seg), seg)
    if what.kind == "test":
        return _block(
            MUTATING,
            f"`{seg}` applies and destroys real infrastructure (each run block), outside tfgate's gate. "
            "Run tests only where a human allowed it (mock providers, a sandbox account); to change "
            "infrastructure use `tfgate plan` and `tfgate apply`.",
            seg,
        )
    return _block(UNKNOWN, _unknown_reason(seg, what.sub), seg)


def _terragrunt(args: Sequence[str], segment: Sequence[str]) -> Decision:
    """Terragrunt: flags take values tfgate cannot tell from commands, so every word is looked at and any
    mutating Terraform command among them blocks (``graph apply``, ``run --all apply``, ``--working-dir
    modules apply`` ...)."""
    seg = _join(segment)
    for j, arg in enumerate(args):
        if arg.startswith("-") or arg in ("run-all", "run", "stack", "exec", "graph"):
            continue
        if arg in ("apply-all", "destroy-all"):
            return _block(MUTATING, _apply_reason(seg, arg.split("-")[0]), seg)
        if "$" in arg:
            return _block(
                UNRESOLVED,
                f"`{seg}`: tfgate cannot tell what `{arg}` expands to; blocked (fail closed).",
                seg,
            )
        if arg in _TF_SUBCOMMANDS:
            d = _terraform(args[j:], segment)
            if not d.allowed and d.code == MUTATING:
                return d
        # anything else is a Terragrunt command of its own or a flag's value: keep looking
    return ALLOW


#: tfgate commands that gate (or report what gates): choosing what they judge with is a human's call.
_GATING = frozenset({"check", "plan", "apply", "destroy", "comment", "state", "shim", "shim-exec"})
#: Options of those commands that change what is judged, what is run, or where it is recorded.
_STEERING_OPTIONS = ("--manifest", "-m", "--terraform", "--no-state-checks", "--audit-log", "--real")


def _tfgate(args: Sequence[str], segment: Sequence[str]) -> Decision:
    positional = [a for a in args if not a.startswith("-")]
    sub = positional[0] if positional else ""
    if (
        sub == "shim-exec"
        or positional[:2] == ["shim", "install"]
        or (
            sub == "protect"
            and positional[1:2] not in (["status"], ["show"], ["verify"])
            and "--help" not in args
        )
    ):
        return _block(
            TAMPER,
            f"`{_join(segment)}` sets up or runs tfgate's own enforcement (the shim, its real binary, protected "
            "mode) by hand: that is a human's setup, not an agent's. Stop here and ask a human.",
            segment,
        )
    steering = next(
        (
            o
            for a in args
            for o in _STEERING_OPTIONS
            if a == o or (o.startswith("--") and a.startswith(o + "="))
        ),
        None,
    )
    if sub in _GATING and steering:
        return _block(
            TAMPER,
            f"`{_join(segment)}` passes `{steering}`, which changes what tfgate judges, what it runs or where "
            "it records it; an agent must not choose that. Stop here and ask a human to run it.",
            segment,
        )
    if "--new-workspace" in args:
        return _block(
            SELF_APPROVAL,
            f"`{_join(segment)}` declares the workspace new, which sets aside the missing-state check: that "
            "is a human's call. Ask a human to confirm the workspace is new and run it.",
            segment,
        )
    if positional[:1] == ["approve"] or positional[:2] in (
        ["approvals", "sign"], ["approvals", "create"], ["shim", "approve"],
    ):  # fmt: skip
        return _block(
            SELF_APPROVAL,
            f"`{_join(segment)}` signs an approval. Approvals must come from a human reviewer: ask a human "
            "to review the plan and run `tfgate approve` themselves.",
            segment,
        )
    if positional[:2] == ["audit", "checkpoint"]:  # as `ssh-keygen -Y sign -n tfgate-audit` is
        return _block(
            SELF_APPROVAL,
            f"`{_join(segment)}` signs an audit checkpoint, a human's statement that the log is intact up to "
            "here: ask a human to review the log and sign it themselves.",
            segment,
        )
    return ALLOW


def _option_at(
    args: Sequence[str], short: str, long: str | None = None, valued: str = ""
) -> tuple[str | None, int]:
    """Value of ``-c VALUE``/``-cVALUE``/``-xc VALUE``/``--long=VALUE``/``--long VALUE`` among args,
    and the index of the argument after it; (None, -1) when absent. Short flags may be bundled, as
    getopt reads them: `valued` names the program's other letters that take a value (the rest of a
    bundle is then that value: ``-Ysign``)."""
    letter = short[1:]
    for k, arg in enumerate(args):
        if long and arg.startswith(long + "="):
            return arg[len(long) + 1 :], k + 1
        if arg == short or (long and arg == long):
            return (args[k + 1], k + 2) if k + 1 < len(args) else (None, -1)
        if arg.startswith("-") and not arg.startswith("--"):
            for pos in range(1, len(arg)):
                if arg[pos] == letter:
                    rest = arg[pos + 1 :]
                    if rest:
                        return rest, k + 1
                    return (args[k + 1], k + 2) if k + 1 < len(args) else (None, -1)
                if arg[pos] in valued:
                    break
    return None, -1


def _option_value(args: Sequence[str], short: str, long: str | None = None, valued: str = "") -> str | None:
    return _option_at(args, short, long, valued)[0]


_SSH_KEYGEN_VALUED = "abCDEFfGIJjKMmNnOPRrSsTtVwYZz"


def _shell_string(args: Sequence[str]) -> str | None:
    """The command string of ``sh -c STRING`` (flags may be combined: ``-lc``, ``-ec``, ``-o x -c``)."""
    wants, k = False, 0
    while k < len(args):
        arg = args[k]
        if arg in ("-o", "-O", "+o", "+O", "--rcfile", "--init-file"):
            k += 2
            continue
        if arg.startswith("--"):
            k += 1
            continue
        if len(arg) > 1 and arg[0] in "-+":
            wants = wants or (arg[0] == "-" and "c" in arg[1:])
            k += 1
            continue
        return arg if wants else None
    return None


def _interpreter_code(name: str, args: Sequence[str]) -> list[str]:
    """The program text an interpreter is given on its command line: -c/-e/-E/--eval/-r values, or awk's
    first operand. Script paths, module names and their arguments (`pytest -k apply`) are not code."""
    code = []
    for k, arg in enumerate(args[:-1]):
        if arg in ("-c", "-e", "-E", "--eval", "-r", "-Command", "-command", "/c", "//c"):
            code.append(args[k + 1])
    if re.fullmatch(r"[gmn]?awk", name) and "-f" not in args:
        operands = [a for a in args if not a.startswith("-")]
        code.extend(operands[:1])
    return code


#: Code that runs what it reads from stdin (`exec(input())`, `eval(STDIN.read)`), not code that reads data.
_RUNS_STDIN = lazy_re(
    r"\b(exec|eval|system|popen|spawn|execSync)\s*\(\s*(input|sys\.stdin|STDIN|<STDIN>|readline|process\.stdin)"
)


_STDIN_NAMES = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})


def _shell_script(args: Sequence[str]) -> tuple[str | None, bool]:
    """(script operand, -s given) of a shell's arguments without -c; option values are skipped."""
    k, reads = 0, False
    while k < len(args):
        arg = args[k]
        if arg in ("-o", "-O", "+o", "+O", "--rcfile", "--init-file"):
            k += 2
            continue
        if arg == "--":
            return (args[k + 1] if k + 1 < len(args) else None), reads
        if arg.startswith("-") and len(arg) > 1:
            reads = reads or (not arg.startswith("--") and "s" in arg[1:])
            k += 1
            continue
        return arg, reads
    return None, reads


def _ssh_remote(args: Sequence[str]) -> str | None:
    with_value = set("BbcDEeFIiJLlmOoPpQRSWw")
    k = _first_operand(args, lambda a: len(a) == 2 and a[-1] in with_value)
    rest = args[k + 1 :]  # after the destination
    return _join(rest) if rest else None


class _InterpreterCode(Exception):
    """An interpreter reads code from stdin on a line that mentions a Terraform mutation."""
