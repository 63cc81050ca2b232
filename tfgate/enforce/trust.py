"""What the privileged side runs must not be the agent's to change: `tfgate protect init` refuses an
interpreter, a tfgate installation (its checkout or venv: every file on the entry point's ``sys.path``) or a
Terraform binary that the agent's user can write, or that sits in a directory it can write. Otherwise the agent
edits tfgate's privileged half (or swaps Terraform) and the next `tfgate apply` runs its code as the privileged
user: the boundary is only as strong as the files it is made of.
"""

from __future__ import annotations

import os
import pwd
import stat
import sys
from pathlib import Path

from tfgate.errors import TfgateError


def _reachable(path: Path) -> bool:
    """Can a user other than root reach PATH (o+x on every directory above it)?"""
    return all(os.stat(p).st_mode & 0o001 for p in path.parents)


def entry_code() -> tuple[str, list[str]]:
    """(interpreter, sys.path entries) the entry point runs tfgate's privileged half with."""
    import sysconfig as py

    here = str(Path(__file__).resolve().parents[2])
    paths = list(dict.fromkeys([here, py.get_paths()["purelib"], py.get_paths()["platlib"]]))
    python = os.path.realpath(sys.executable)
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not _reachable(Path(python)) and system.exists():
        python = str(system)  # the same version outside root's home (a pyenv under /root, say)
    return python, paths


def _writable_by(info: os.stat_result, uid: int, groups: set[int]) -> bool:
    if stat.S_ISLNK(info.st_mode):
        return info.st_uid == uid  # a link's own bits mean nothing; its owner may replace it
    if info.st_uid == uid:
        return True
    if info.st_mode & stat.S_IWOTH and not (stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX):
        return True
    return bool(info.st_mode & stat.S_IWGRP and info.st_gid in groups)


def refuse_agent_writable(agent: str, files: list[str]) -> None:
    """TfgateError when AGENT can change any of FILES (directories: everything under them) or a directory
    above them."""
    pw = pwd.getpwnam(agent)
    groups = set(os.getgrouplist(agent, pw.pw_gid))
    for name in files:
        top = Path(os.path.realpath(name))
        if not top.exists():
            continue
        found = [p for p in top.parents if _writable_by(os.lstat(p), pw.pw_uid, groups)]
        if not found and top.is_dir():
            for where, dirs, names in os.walk(top):
                for n in (
                    where,
                    *(os.path.join(where, d) for d in dirs),
                    *(os.path.join(where, f) for f in names),
                ):
                    if _writable_by(os.lstat(n), pw.pw_uid, groups):
                        found.append(Path(n))
                        break
                if found:
                    break
        elif not found and _writable_by(os.lstat(top), pw.pw_uid, groups):
            found.append(top)
        if found:
            raise TfgateError(
                f"{agent} can write {found[0]} ({name} is run by the privileged side): install tfgate, its "
                "interpreter and Terraform where only root writes (a venv under /opt, say), then run "
                "`tfgate protect init` from there"
            )
