"""Options of everyday tools that run a command (`make --eval`, sed's `e`, `tar --to-command`, `vim -c '!..'`,
`less +!`, `ssh -o ProxyCommand`, `rsync -e`, `git -c core.pager`, `zip -TT`, `sort --compress-program` ...),
environment variables that do the same (`GIT_PAGER`, `GIT_EXTERNAL_DIFF`, `LESSOPEN` ...), and the programs that
turn text tfgate cannot read into text a shell runs (`base64 -d`, `rev`, `xxd -r`, `openssl enc -d`, `tr`)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence

from tfgate.agents.words import lazy_re

SHELL = "shell"  # the value is a shell command line: judged as one
CODE = "code"  # the value is code of another language, or a program name: judged by what it mentions

#: program -> {option: kind}; `--opt=value`, `--opt value`, `-oVALUE` and `-o VALUE` are all read.
_OPTIONS: dict[str, dict[str, str]] = {
    "make": {"--eval": CODE, "-E": CODE},
    "tar": {"--checkpoint-action": SHELL, "--to-command": SHELL, "--use-compress-program": SHELL, "-I": SHELL,
            "--info-script": SHELL, "--new-volume-script": SHELL, "-F": SHELL, "--rsh-command": SHELL},
    "vim": {"-c": CODE, "--cmd": CODE, "-S": CODE}, "less": {}, "man": {"-P": SHELL, "--pager": SHELL},
    "ssh": {"-o": SHELL}, "scp": {"-o": SHELL, "-S": SHELL}, "sftp": {"-o": SHELL, "-S": SHELL},
    "rsync": {"-e": SHELL, "--rsh": SHELL, "--rsync-path": SHELL},
    "zip": {"-TT": SHELL, "--unzip-command": SHELL},
    "sort": {"--compress-program": CODE},
    "gdb": {"-ex": CODE, "--eval-command": CODE, "-iex": CODE},
    "git": {"--exec": SHELL, "-x": SHELL, "--extcmd": SHELL, "--tree-filter": SHELL, "--index-filter": SHELL,
            "--msg-filter": SHELL, "--commit-filter": SHELL, "--env-filter": SHELL, "--parent-filter": SHELL,
            "--tag-name-filter": SHELL},
    "journalctl": {}, "watch": {}, "tcpdump": {"-z": SHELL}, "flock": {}, "nmap": {"--script": CODE},
}  # fmt: skip
_ALIASES = {"gmake": "make", "nvim": "vim", "vi": "vim", "gvim": "vim", "view": "vim", "ex": "vim",
            "vimdiff": "vim", "more": "less", "bsdtar": "tar", "gtar": "tar", "mosh": "ssh"}  # fmt: skip
#: ssh options (`-o Name=value` or `-o "Name value"`) that run a local command.
_SSH_EXEC = lazy_re(
    r"(?i)^\s*(proxycommand|localcommand|knownhostscommand|remotecommand|match)\s*[= ]\s*(.*)$", re.S
)
#: Environment variables whose value is a command some program runs.
EXEC_VARS = frozenset(
    {"GIT_PAGER", "PAGER", "MANPAGER", "GIT_EXTERNAL_DIFF", "GIT_EDITOR", "EDITOR", "VISUAL", "GIT_SSH",
     "GIT_SSH_COMMAND", "GIT_ASKPASS", "SSH_ASKPASS", "GIT_SEQUENCE_EDITOR", "LESSOPEN", "LESSCLOSE",
     "GIT_CONFIG_PARAMETERS", "PROMPT_COMMAND", "RSYNC_RSH", "BROWSER", "SUDO_ASKPASS", "GIT_PROXY_COMMAND",
     "BASH_ENV", "ENV", "TAR_OPTIONS", "MAKEFLAGS", "GNUMAKEFLAGS", "LESS", "PERL5OPT", "NODE_OPTIONS",
     "PYTHONSTARTUP", "RUBYOPT"}
)  # fmt: skip
_GIT_CONFIG_VAR = lazy_re(r"^GIT_CONFIG_(VALUE|KEY)_\d+$")


def exec_var(name: str) -> bool:
    return name in EXEC_VARS or bool(_GIT_CONFIG_VAR.match(name))


def payloads(name: str, args: Sequence[str]) -> Iterator[tuple[str, str, str]]:
    """(option, value, kind) for every exec-capable option among a program's arguments."""
    name = _ALIASES.get(name, name)
    table = _OPTIONS.get(name)
    if table is None:
        return
    for k, arg in enumerate(args):
        nxt = args[k + 1] if k + 1 < len(args) else ""
        if name in ("vim", "less") and arg.startswith("+"):
            yield arg[:2], arg[1:], CODE  # vim +cmd, less +!cmd (+G is a plain command)
            continue
        if name == "git" and arg == "-c" and nxt:
            key, _, value = nxt.partition("=")
            if value:
                yield f"-c {key}", value.lstrip("!"), SHELL
            continue
        if name == "git" and arg == "config" and k + 2 < len(args):
            yield "config", " ".join(args[k + 1 :]), CODE  # git config alias.x '!...', core.pager ...
            return
        if name in ("ssh", "scp", "sftp") and arg.startswith("-o"):
            m = _SSH_EXEC.match(arg[2:] or nxt)
            if m:
                yield f"-o {m.group(1)}", m.group(2), SHELL
            continue
        if name == "make" and "=" in arg and not arg.startswith("-") and re.match(r"^[\w.]+[:+?]?=", arg):
            yield arg.split("=", 1)[0], arg.split("=", 1)[1], CODE  # make CC='...': recipes may run it
            continue
        for opt, kind in table.items():
            if arg == opt and nxt:
                yield opt, nxt, kind
            elif arg.startswith(opt + "=") and opt.startswith("--"):
                value = arg[len(opt) + 1 :]
                if opt == "--checkpoint-action":
                    value = value.split("=", 1)[1] if value.startswith("exec=") else ""
                if value:
                    yield opt, value, kind
            elif len(opt) == 2 and arg.startswith(opt) and len(arg) > 2 and not arg.startswith("--"):
                yield opt, arg[2:], kind
    if name == "make":
        pairs = itertools.pairwise(args)
        if any(a in ("-f", "--file", "--makefile") and b in ("-", "/dev/stdin") for a, b in pairs):
            yield "-f -", "", "stdin"


def sed_commands(args: Sequence[str]) -> list[tuple[str, str, bool]]:
    """The commands of sed's script(s) (-e values, --expression=, else the first operand): (command letter,
    its text, whether an `s` has the `w` flag); `e` commands and `s///e` are ("e", ...)."""
    scripts = [args[k + 1] for k, a in enumerate(args[:-1]) if a in ("-e", "--expression")]
    scripts += [a.split("=", 1)[1] for a in args if a.startswith("--expression=")]
    if not scripts and "-f" not in args and not any(a.startswith("--file") for a in args):
        operands = [a for a in args if not a.startswith("-")]
        scripts = operands[:1]
    out: list[tuple[str, str, bool]] = []
    for script in scripts:
        out.extend(_sed_script(script))
    return out


def _sed_script(s: str) -> Iterator[tuple[str, str, bool]]:
    i, n = 0, len(s)
    while i < n:
        while i < n and s[i] in " \t\n;{}!":
            i += 1
        # addresses: numbers, $, /re/, \cREc, first~step, ranges, +N
        while i < n and (s[i].isdigit() or s[i] in "$,~+ " or s[i] in "/\\"):
            if s[i] in "/\\":
                delim = s[i] if s[i] == "/" else (s[i + 1] if i + 1 < n else "/")
                i += 1 if s[i] == "/" else 2
                while i < n and s[i] != delim:
                    i += 2 if s[i] == "\\" else 1
                i += 1
                while i < n and s[i] in "IM":
                    i += 1
            else:
                i += 1
        while i < n and s[i] in " \t!":
            i += 1
        if i >= n:
            return
        cmd = s[i]
        i += 1
        if cmd in "sy":
            if i >= n:
                return
            delim, parts = s[i], 0
            i += 1
            while i < n and parts < 2:
                if s[i] == "\\":
                    i += 2
                    continue
                if s[i] == delim:
                    parts += 1
                i += 1
            start = i
            while i < n and s[i] not in ";\n}":
                if s[i] in "wW":  # the w flag takes the rest of the line as a file name
                    yield cmd, s[i:], True
                    i = s.find("\n", i) if "\n" in s[i:] else n
                    break
                i += 1
            flags = s[start:i]
            if cmd == "s" and "e" in flags:
                yield "e", "", False
            continue
        end = s.find("\n", i)
        end = n if end < 0 else end
        if cmd in "aicrRwWebtT:":
            if cmd in "btT:":  # labels end at ; too (GNU)
                semi = s.find(";", i)
                end = semi if 0 <= semi < end else end
            yield cmd, s[i:end].strip(), False
            i = end
        elif cmd == "#":
            i = end


#: Programs whose output is text tfgate cannot read (decoded, reversed, transformed) before a shell runs it.
_DECODERS = frozenset(
    {"base64", "base32", "basenc", "b64decode", "uudecode", "openssl", "xxd", "rev", "tr", "gunzip", "zcat",
     "gzip", "bzip2", "bunzip2", "bzcat", "xz", "unxz", "xzcat", "zstd", "unzstd", "zstdcat", "lzcat",
     "lzma", "unlzma", "lz4", "lz4cat", "brotli", "iconv", "recode", "sed", "awk", "gawk", "mawk", "nawk",
     "perl", "cut", "dd", "gpg", "age", "od", "uncompress", "rot13", "caesar", "tac"}
)  # fmt: skip


def opaque(name: str, args: Sequence[str]) -> bool:
    """This program turns its input into text tfgate cannot read (a decoder, a reverser, a stream editor);
    `printf`/`echo -e` with escapes count too (`printf '\\x74erraform'`)."""
    if name in _DECODERS:
        return True
    if name in ("printf", "echo"):
        return any(re.search(r"\\(x[0-9a-fA-F]|[0-7]{1,3}|u[0-9a-fA-F]|U[0-9a-fA-F])", a) for a in args)
    return False
