"""The guard's vocabulary: decision codes, the Decision type, and the tables of programs and Terraform words it
knows (subcommands that mutate, wrappers, shells, interpreters, environment variables that steer Terraform)."""

from __future__ import annotations

import re
from collections import namedtuple
from collections.abc import Callable, Sequence

#: Decision codes.
ALLOWED = "allowed"
MUTATING = "mutating"  # a known apply/destroy/state-mutating command
UNKNOWN = "unknown-subcommand"
UNPARSEABLE = "unparseable"
UNRESOLVED = "unresolved-program"
SELF_APPROVAL = "self-approval"
TAMPER = "tamper"  # changes tfgate's own ground or how it judges
OPAQUE = "opaque"  # text tfgate cannot read (decoded, reversed) run as code

MAX_DEPTH = 8
MAX_COMMAND = 100_000  # characters; the analysis is linear, ~1 s per 100 kB: hooks time out (and fail open)


class _Lazy:
    """A regular expression compiled when first used: the hook compiles only what one command needs."""

    __slots__ = ("_args", "_compiled")

    def __init__(self, pattern: str, flags: int) -> None:
        self._args = (pattern, flags)
        self._compiled: re.Pattern[str] | None = None

    def __getattr__(self, name: str) -> object:
        if self._compiled is None:
            self._compiled = re.compile(*self._args)
        return getattr(self._compiled, name)


def lazy_re(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """`re.compile`, deferred to the first match (module-level patterns of the guard)."""
    return _Lazy(pattern, flags)  # type: ignore[return-value]


def record(cls: type) -> type:
    """An immutable record from a class of annotated fields (with defaults): what `dataclass(frozen=True)` or
    `typing.NamedTuple` make, without importing `inspect` or `typing` (the agent hook starts for every
    command an agent runs: those imports alone cost more than its analysis)."""
    names = list(cls.__annotations__)
    defaults = [cls.__dict__[n] for n in names if n in cls.__dict__]
    base = namedtuple(cls.__name__, names, defaults=defaults)
    ns = {"__slots__": (), "__doc__": cls.__doc__, "__module__": cls.__module__,
          "__annotations__": cls.__annotations__}  # fmt: skip
    return type(cls.__name__, (base,), ns)


@record
class Decision:
    """The guard's answer for one command line."""

    allowed: bool
    reason: str = ""
    #: The simple command (or command line) that decided a block.
    segment: str | None = None
    code: str = ALLOWED


ALLOW = Decision(True)

# --- what Terraform subcommands do ------------------------------------------------------------------

_TF_READ_ONLY = frozenset(
    {
        "init", "validate", "plan", "show", "output", "fmt", "version", "providers", "graph", "console",
        "get", "login", "logout", "test", "metadata", "modules", "query",
    }
)  # fmt: skip
_TF_APPLY = frozenset({"apply", "destroy", "refresh"})
_TF_STATE_MUTATING = frozenset({"import", "taint", "untaint", "force-unlock"})
_STATE_READ = frozenset({"list", "show", "pull", "identities"})
_STATE_WRITE = frozenset({"rm", "mv", "push", "replace-provider"})
_WORKSPACE_READ = frozenset({"list", "show", "select", "new"})
_WORKSPACE_WRITE = frozenset({"delete"})
_TF_SUBCOMMANDS = _TF_READ_ONLY | _TF_APPLY | _TF_STATE_MUTATING | {"state", "workspace"}
_HELP = frozenset({"-h", "-help", "--help"})
_VERSION = frozenset({"-v", "-version", "--version"})
#: Words that, after a program tfgate cannot identify, mean "this may be Terraform mutating something".
_MUTATING_WORDS = _TF_APPLY | _TF_STATE_MUTATING | {"apply-all", "destroy-all"}

# Versioned names (terraform1.9.5, terraform_1.9), renamed real binaries behind wrappers (terraform.real) and
# container images (hashicorp/terraform:1.9, ...@sha256:...).
_TF_NAME = lazy_re(
    r"^(terraform|tofu|opentofu|tfgate-terraform)([-_]?v?\d+(\.\d+)*)?(\.(real|bin|orig|old|wrapped))?"
    r"(:(\d[\w.-]*|latest|light|full|beta[\w.-]*|alpha[\w.-]*|rc[\w.-]*))?(@sha256:[0-9a-f]+)?$"
)
_TG_NAME = lazy_re(r"^terragrunt([-_]?v?\d[\w.]*)?$")
_SHELLS = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "ash", "yash", "fish", "rbash", "busybox", "csh", "tcsh"}
)  # fmt: skip
_PYTHON = lazy_re(r"^python[\d.]*$")
#: Interpreters whose code (an -c/-e argument, or stdin) could start Terraform: judged by what it mentions.
_INTERPRETER = lazy_re(
    r"^(python[\d.]*|pypy[\d.]*|perl[\d.]*|ruby[\d.]*|node(js)?|deno|bun|php[\d.]*|lua[\d.]*|luajit|"
    r"[gmn]?awk|rscript|osascript|tclsh|expect|groovy|pwsh|powershell|cmd)$"
)
_VERSION_MANAGERS = frozenset({"tfenv", "tofuenv", "tgenv", "tgswitch", "tfswitch"})  # `tfenv exec ARGS`
#: Programs that never run their arguments as a command: no wrapper scan (`echo terraform destroy`).
_NON_EXECUTING = frozenset(
    {
        "echo", "printf", "ls", "cat", "grep", "egrep", "fgrep", "rg", "ag", "ack", "git", "tar", "zip",
        "unzip", "gzip", "cp", "mv", "rm", "mkdir", "rmdir", "touch", "head", "tail", "less", "more", "wc",
        "sort", "uniq", "diff", "stat", "file", "du", "df", "basename", "dirname", "realpath", "readlink",
        "test", "[", "[[", "which", "type", "whereis", "man", "tee", "jq", "yq", "cut", "tr", "column",
        "md5sum", "sha256sum", "chmod", "chown", "ln", "tree", "code", "vim", "nano", "open",
    }
)  # fmt: skip
_TF_WORD = lazy_re(r"terraform|tofu|terragrunt", re.IGNORECASE)
_TFGATE_COMMANDS = frozenset(
    {"check", "demo", "plan", "apply", "destroy", "guard", "approve", "approvals", "shim", "shim-exec",
     "audit", "state", "comment", "init", "protect", "--version", "--help"}
)  # fmt: skip
#: Programs that run an argument as a shell command line (`tmux new -d 'cmd'`, `xterm -e cmd`).
_RUNS_ARGS_AS_CODE = frozenset(
    {"tmux", "screen", "byobu", "dtach", "abduco", "xterm", "urxvt", "gnome-terminal", "konsole", "kitty",
     "alacritty", "wezterm", "pwsh", "powershell", "cmd", "start"}
)  # fmt: skip
#: Wrappers that run the command after them: a Terraform subcommand tfgate cannot read behind them
#: blocks. (Behind other programs only known mutations block: `helm upgrade terraform ./chart`.)
_WRAPPERS = frozenset(
    {"sudo", "doas", "nohup", "timeout", "nice", "ionice", "env", "exec", "command", "builtin", "stdbuf",
     "setsid", "chrt", "taskset", "xargs", "parallel", "flock", "unbuffer", "caffeinate", "strace", "ltrace",
     "time", "retry", "chronic", "direnv", "uv", "uvx", "poetry", "pipenv", "pdm", "hatch", "aws-vault", "op",
     "doppler", "dotenv", "mise", "asdf", "devbox", "nix", "npx", "entr", "find", "firejail", "bwrap",
     "systemd-run"}
)  # fmt: skip
#: Wrappers whose options tfgate knows: name -> (options that take a value, operands before the command).
_WRAPPER_SYNTAX: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user", "--group"}), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "nohup": (frozenset(), 0),
    "time": (frozenset({"-f", "-o", "--format", "--output"}), 0),
    "timeout": (frozenset({"-k", "-s", "--kill-after", "--signal"}), 1),
    "nice": (frozenset({"-n", "--adjustment"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p", "-P", "-u", "--class", "--classdata"}), 0),
    "env": (frozenset({"-u", "-C", "--unset", "--chdir"}), 0),
    "exec": (frozenset({"-a"}), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "unbuffer": (frozenset(), 0),
    "caffeinate": (frozenset({"-t", "-w"}), 0),
    "chronic": (frozenset(), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "chrt": (frozenset(), 1),
    "taskset": (frozenset(), 1),
    "flock": (frozenset({"-w", "-E", "--timeout", "--conflict-exit-code"}), 1),
    "strace": (frozenset({"-o", "-e", "-p", "-s", "-u", "-E"}), 0),
    "ltrace": (frozenset({"-o", "-e", "-p", "-s", "-u"}), 0),
    "xargs": (frozenset({"-I", "-n", "-P", "-L", "-d", "-E", "-s", "-a", "-i", "-l"}), 0),
    "parallel": (frozenset({"-j", "-S", "--jobs", "--sshlogin"}), 0),
}


#: Tools that run a command only through one of their subcommands (`uv run`, `asdf exec`, `aws-vault exec`).
_SUBCOMMAND_WRAPPERS: dict[str, frozenset[str]] = {
    "asdf": frozenset({"exec"}), "mise": frozenset({"exec", "x"}), "uv": frozenset({"run"}),
    "poetry": frozenset({"run"}), "pipenv": frozenset({"run"}), "pdm": frozenset({"run"}),
    "hatch": frozenset({"run"}), "aws-vault": frozenset({"exec"}), "op": frozenset({"run"}),
    "doppler": frozenset({"run"}), "direnv": frozenset({"exec"}), "devbox": frozenset({"run"}),
    "nix": frozenset({"run", "develop", "shell"}),
}  # fmt: skip


def _wraps(name: str, args: Sequence[str]) -> bool:
    """`name args` runs another command (so a Terraform subcommand tfgate cannot read behind it blocks)."""
    if name in _SUBCOMMAND_WRAPPERS:
        first = next((a for a in args if not a.startswith("-")), None)
        return first in _SUBCOMMAND_WRAPPERS[name]
    return name in _WRAPPERS


def _wrapped_start(name: str, args: Sequence[str]) -> int | None:
    """Where the command a known wrapper runs starts in its arguments (None: not a known wrapper)."""
    syntax = _WRAPPER_SYNTAX.get(name)
    if syntax is None:
        return None
    valued, operands = syntax
    k = _first_operand(args, valued.__contains__)
    while name == "env" and k < len(args) and _ASSIGNMENT.match(args[k]):
        k += 1  # env NAME=value ... COMMAND
    return min(k + operands, len(args))


#: Environment variables that change what runs: TF_CLI_ARGS* adds arguments (even the subcommand) to
#: every Terraform call; TFGATE_* pick the binary tfgate trusts, the audit log, the approvals ...
_STEERING_NAME = lazy_re(r"^(TF_CLI_ARGS\w*|TFGATE_\w+)(\+?=(.*))?$", re.DOTALL)
#: Builtins that set or export variables by name (`export X`, `read X`, `printf -v X`, `declare X=...`).
_SETTERS = frozenset({"export", "declare", "typeset", "local", "readonly", "read", "printf", "mapfile",
                      "readarray", "env", "set"})  # fmt: skip
MAX_STEPS = 20_000  # simple commands analysed per command line (nested eval/sh -c included)
MAX_VALUE = 65_536  # characters a shell variable may hold in the analysis


#: A Terraform-family program followed closely by a mutating subcommand (`os.system("terraform apply")`,
#: `["terraform", "-chdir=x", "apply"]`), in text tfgate cannot parse as shell.
_MUTATION_NEAR = lazy_re(
    r"(terraform|tofu|terragrunt)\b.{0,60}?\b(apply|destroy|refresh|import|taint|untaint|force-unlock"
    r"|apply-all|destroy-all|state\W+(rm|mv|push|replace-provider)|workspace\W+delete)\b",
    re.IGNORECASE | re.DOTALL,
)


#: Mutating words that are not also everyday words of code (`import` is: it counts only close after the name).
_MUTATION_FAR = lazy_re(
    r"\b(apply|destroy|refresh|taint|untaint|force-unlock|apply-all|destroy-all)\b"
    r"|\bstate\W+(rm|mv|push|replace-provider)\b|\bworkspace\W+delete\b"
)


def mentions_mutation(text: str) -> bool:
    """The text names a Terraform-family program and a mutating subcommand (`import` only close after it)."""
    return bool(_MUTATION_NEAR.search(text) or (_TF_WORD.search(text) and _MUTATION_FAR.search(text)))


def _dequote(text: str) -> str:
    """The text without quote and escape characters (``te''rraform`` -> ``terraform``)."""
    return re.sub(r"[\"'\\`]", "", text)


_ASSIGNMENT = lazy_re(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_VAR_REF = lazy_re(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_KEYWORDS = frozenset(
    {"!", "{", "}", "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "coproc", "esac"}
)


def _first_operand(args: Sequence[str], takes_value: Callable[[str], bool]) -> int:
    """Index of the first argument that is not an option (or an option's value); after `--` if given."""
    k = 0
    while k < len(args):
        arg = args[k]
        if arg == "--":
            return k + 1
        if arg.startswith("-") and len(arg) > 1:
            k += 2 if takes_value(arg) else 1
            continue
        return k
    return k
