"""Which commands change tfgate's own ground (see `ground`): redirections into it, and programs that write,
move, delete or edit what they are given (everything but a short list of readers), judged per program:
`cp` by its destination, `rm`/`mv` also by what a directory holds, `git` by subcommand, `find` by its actions,
`sed`/`sort`/`yq` by their in-place options, `tar`/`unzip` by where they extract."""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Sequence

from tfgate.agents.ground import Ground, mentions_ground

#: Programs that only read the files they are given (their exceptions are below).
_READERS = frozenset(
    {
        "cat", "tac", "less", "more", "most", "head", "tail", "grep", "egrep", "fgrep", "rg", "ag", "ack", "ls",
        "stat", "file", "wc", "diff", "colordiff", "cmp", "comm", "md5sum", "sha1sum", "sha256sum", "sha512sum",
        "b2sum", "cksum", "du", "tree", "realpath", "readlink", "basename", "dirname", "test", "[", "[[", "echo",
        "printf", "cd", "pushd", "popd", "jq", "bat", "batcat", "nl", "od", "hexdump", "strings", "column",
        "cut", "fold", "paste", "join", "type", "which", "whereis", "lsattr", "getfacl", "namei", "yamllint",
        "sed", "sort", "uniq", "xxd", "yq", "find", "git", "ssh-keygen", "tar", "base64", "sha224sum", "sha384sum",
        "vimdiff", "view", "tfgate", "terraform", "tofu", "terragrunt", "exa", "eza", "fd", "fdfind", "dust",
    }
)  # fmt: skip
_REMOVERS = frozenset({"rm", "mv", "shred", "unlink", "rmdir", "trash", "trash-put", "srm", "wipe", "gio"})
_COPIERS = frozenset({"cp", "install", "rsync", "scp", "ditto", "rclone"})
_EXTRACTORS = frozenset({"unzip", "7z", "7za", "cpio", "bsdtar", "unrar"})
_GIT_READERS = frozenset(
    {"log", "diff", "show", "status", "blame", "annotate", "grep", "ls-files", "ls-tree", "cat-file",
     "rev-parse", "add", "commit", "shortlog", "describe", "check-ignore", "check-attr", "help", "version",
     "format-patch", "difftool", "whatchanged", "rev-list", "archive", "bundle", "log-tree", "fetch", "push"}
)  # fmt: skip
_GIT_VALUED = frozenset({"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--exec-path"})
_FIND_ACTIONS = frozenset(
    {"-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls"}
)
_FIND_NAMES = frozenset({"-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename", "-lname"})
#: Sample names of the ground, for patterns (`find -name 'tfgate.*'`, `rm -rf *` with no working directory).
_SAMPLES = (
    "tfgate.yaml", "tfgate.yml", "tfgate.json", "allowed_signers", ".tfgate", "approval-x.json", "ledger.json",
    "audit.jsonl",
)  # fmt: skip


def _operands(args: Sequence[str]) -> list[str]:
    out, after = [], False
    for a in args:
        if after or not a.startswith("-") or a == "-":
            out.append(a)
        elif a == "--":
            after = True
    return out


def _short_flags(args: Sequence[str]) -> str:
    return "".join(a[1:] for a in args if a.startswith("-") and not a.startswith("--"))


def _reads_only(name: str, args: Sequence[str]) -> bool:
    """A reader given these arguments only reads (no in-place edit, output file or extraction)."""
    flags = _short_flags(args)
    if name == "sed":
        return (
            "i" not in flags and not any(a.startswith("--in-place") for a in args) and not _sed_writes(args)
        )
    if name == "sort":
        return "o" not in flags and not any(a.startswith("--output") for a in args)
    if name == "uniq":
        return len(_operands(args)) <= 1
    if name == "xxd":
        return "r" not in flags and len(_operands(args)) <= 1
    if name == "yq":
        return "i" not in flags and not any(a.startswith("--inplace") for a in args)
    if name == "find":
        return not any(a in _FIND_ACTIONS for a in args)
    if name == "ssh-keygen":
        return bool(re.search(r"[lL]", flags)) or any(
            args[k + 1] in ("verify", "check-novalidate", "find-principals")
            for k, a in enumerate(args[:-1])
            if a == "-Y"
        )
    if name in ("tar", "bsdtar"):
        mode = args[0].lstrip("-") if args else ""
        return not (set(mode) & set("xrAu") or re.search(r"[xrAu]", flags)) and not any(
            a in ("--extract", "--get", "--append", "--update", "--delete", "--remove-files") for a in args
        )
    return True


def _sed_writes(args: Sequence[str]) -> bool:
    from tfgate.agents.execopts import sed_commands

    return any(cmd in "wW" or flag_w for cmd, _, flag_w in sed_commands(args))


def _git(args: Sequence[str], ground: Ground, stdin: Sequence[str] = ()) -> tuple[str, str] | None:
    k = 0
    while k < len(args) and args[k].startswith("-"):
        k += 2 if args[k] in _GIT_VALUED else 1
    if k >= len(args):
        return None
    sub, rest = args[k], args[k + 1 :]
    flags = _short_flags(rest)
    if (sub == "clean" and re.search("[xX]", flags)) or (
        sub == "stash"
        and (re.search("[ua]", flags) or any(a in ("--all", "--include-untracked") for a in rest))
    ):
        what = ground.path(".", contents=True) or ("tfgate's files" if ground.cwd is None else None)
        if what:
            return f"git {sub}", what
    if sub == "clean" and (
        what := _untracked_ground(ground)
    ):  # `git clean -fd` removes an untracked manifest
        return "git clean", what
    if sub in _GIT_READERS:
        return None
    contents = sub in ("checkout", "restore", "rm", "clean", "mv")
    return _first(_operands(rest), ground, contents=contents) or _stdin_names(stdin)  # `git apply <<EOF`


def _untracked_ground(ground: Ground) -> str | None:
    """Ground at the top of the working directory that git does not track (what `git clean` would remove)."""
    import subprocess

    if ground.cwd is None:
        return "tfgate's files, which may be untracked here"
    try:
        names = [n for n in os.listdir(ground.cwd) if ground.path(n)]
    except OSError:
        return None
    if not names:
        return None
    try:
        out = subprocess.run(["git", "-C", ground.cwd, "ls-files", "--others", "--exclude-standard", "--", *names],
                             capture_output=True, text=True, timeout=5)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return f"tfgate's files ({', '.join(names)}), which git may not track"
    untracked = out.stdout.split() if out.returncode == 0 else names
    return f"tfgate's files git does not track ({', '.join(untracked)})" if untracked else None


def _first(words: Sequence[str], ground: Ground, *, contents: bool = False) -> tuple[str, str] | None:
    for word in words:
        what = ground.path(word, contents=contents)
        if what:
            return word, what
    return None


def _copy(name: str, args: Sequence[str], ground: Ground) -> tuple[str, str] | None:
    operands = _operands(args)
    target = next((args[k + 1] for k, a in enumerate(args[:-1]) if a in ("-t", "--target-directory")), None)
    target = target or next((a.split("=", 1)[1] for a in args if a.startswith("--target-directory=")), None)
    if target is None and len(operands) >= 2:
        target, operands = operands[-1], operands[:-1]
    if target is None:
        return None
    contents = name == "rsync" and any(a.startswith("--delete") for a in args)
    if what := ground.path(target, contents=contents):
        return target, what
    linking = re.search("[ls]", _short_flags(args)) or {"--link", "--symbolic-link"} & set(args)
    if name == "cp" and linking and (hit := _first(operands, ground)):  # a link to the ground edits it
        return hit
    full_target = ground._full(target)
    into = (
        target.endswith("/") or target in (".", "..") or len(operands) > 1 or target != _operands(args)[-1]
        or (full_target is not None and os.path.isdir(full_target))
    )  # fmt: skip
    for source in operands:  # `cp -r /tmp/x/. infra/` overwrites infra/tfgate.yaml
        base = source.rstrip("/").rsplit("/", 1)[-1]
        if into and base not in (".", "..", "") and (what := ground.path(f"{target.rstrip('/')}/{base}")):
            return source, what
        if (
            base in (".", "..", "")
            or (name == "rsync" and source.endswith("/"))
            or "-r" in args
            or "-R" in args
        ):
            from tfgate.agents.ground import _walk

            full = ground._full(source)
            if full and os.path.isdir(full) and (what := _walk(full)):
                return source, f"{what}, copied over the one in {target}"
    return None


_NAMED = (
    "tfgate's ledger",
    "the audit log",
    "the approvals",
)  # ground.dynamic()'s files, not its directories


def _find(args: Sequence[str], ground: Ground) -> tuple[str, str] | None:
    patterns = [args[k + 1] for k, a in enumerate(args[:-1]) if a in _FIND_NAMES]
    # the ledger and audit log where the manifest or environment put them (`state: {ledger: ...}`), by name
    named = (
        [os.path.basename(p).lower() for p, what in ground.dynamic() if what.startswith(_NAMED)]
        if patterns
        else []
    )
    for p in patterns:
        last = p.rstrip("/").rsplit("/", 1)[-1].lower()
        if any(fnmatch.fnmatchcase(s, last) for s in (*_SAMPLES, *named)) or ground.path(p):
            return p, "tfgate's files (a find pattern that matches them)"
    starts = []
    for a in args:
        if a.startswith(("-", "(", "!")):
            break
        starts.append(a)
    return _first(starts or ["."], ground, contents=not patterns)


def tamper(
    name: str, args: Sequence[str], writes: Sequence[str], ground: Ground, stdin: Sequence[str] = ()
) -> tuple[str, str] | None:
    """(the word, what of tfgate's ground it is) when this simple command changes tfgate's ground."""
    for target in writes:
        if what := ground.path(target):
            return f"> {target}", what
    if name == "git":
        return _git(args, ground, stdin)
    if name == "find" and not _reads_only(name, args):
        return _find(args, ground)
    if name in _READERS and _reads_only(name, args):
        return None
    if name in ("tar", "bsdtar") or name in _EXTRACTORS:
        where = next((args[k + 1] for k, a in enumerate(args[:-1]) if a in ("-C", "--directory", "-d")), ".")
        if what := ground.holds(where):
            return f"{name} (extracting into {where})", what
        if name in ("tar", "bsdtar"):
            return _first(_operands(args[1:]), ground)
    if name in _COPIERS:
        return _copy(name, args, ground)
    if name in _REMOVERS or (
        name in ("chmod", "chown", "chgrp", "setfacl", "chattr") and re.search("R", _short_flags(args))
    ):
        return _first(_operands(args), ground, contents=True)
    for word in args:  # any other program given the ground, or code that names it
        if what := ground.path(word):
            return word, what
        if any(ch in word for ch in " ('\"") and (mention := mentions_ground(word)):
            return mention, f"tfgate's files ({mention}), named in code"
    return _stdin_names(stdin)  # `patch <<EOF` with a diff of the manifest


def _stdin_names(stdin: Sequence[str]) -> tuple[str, str] | None:
    for text in stdin:
        if mention := mentions_ground(text):
            return mention, f"tfgate's files ({mention}), named in the input it is given"
    return None


def tamper_reason(segment: str, word: str, what: str) -> str:
    """The refusal: what was touched and why it matters; it recommends nothing that would work around it."""
    return (
        f"`{segment[:200]}` would change {what} (`{word}`). That is tfgate's own ground: changing it would "
        "disarm the gate, so an agent may read it but never write, move, delete or edit it. Stop here and ask "
        "a human to make this change."
    )
