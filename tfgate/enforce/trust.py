"""What the privileged side runs must not be the agent's to change: `tfgate protect init` refuses an
interpreter, a tfgate installation (its checkout or venv: every file on the entry point's ``sys.path``) or a
Terraform binary that the agent's user can write, or that sits in a directory it can write. Otherwise the agent
edits tfgate's privileged half (or swaps Terraform) and the next `tfgate apply` runs its code as the privileged
user: the boundary is only as strong as the files it is made of. Also what root takes from the agent's directory:
its states (never through a symlink) and the policy it pins (read once, parsed before it is shown or copied).
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


# --- root's file operations in the agent's directory --------------------------------------------------
# `protect init` moves states out of the root and `protect remove` puts them back: the agent can write that
# directory and may swap a name for a symlink at any moment, to have root read a file it cannot (into a state
# it can read) or write and chown one it should not own. Nothing here follows a symlink at any step.

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


def _open_dir(path: Path) -> int:
    """A descriptor of the directory PATH, reached from / without following a symlink at any step."""
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in Path(os.path.abspath(path)).parts[1:]:
            nxt = os.open(part, _DIR, dir_fd=fd)
            os.close(fd)
            fd = nxt
    except OSError as exc:
        os.close(fd)
        raise TfgateError(f"{path}: not a directory reached without symlinks ({exc.strerror})") from None
    return fd


def read_regular(path: Path) -> bytes:
    """The bytes of the regular file PATH (TfgateError for a symlink, a device, anything else)."""
    dfd = _open_dir(path.parent)
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dfd)
    except OSError as exc:
        raise TfgateError(f"{path}: not a regular file ({exc.strerror}): move it away first") from None
    finally:
        os.close(dfd)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise TfgateError(f"{path}: not a regular file: move it away first")
        return fh.read()


def _fresh(name: str) -> str:
    import secrets

    return f".{name}.tfgate-{secrets.token_hex(6)}"


def write_into(path: Path, data: bytes, uid: int, gid: int, mode: int = 0o644) -> None:
    """PATH replaced by a new file holding DATA, owned UID:GID: written under a fresh name (never through a
    symlink), then renamed over whatever is at PATH."""
    dfd = _open_dir(path.parent)
    try:
        tmp = _fresh(path.name)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            os.fchown(fh.fileno(), uid, gid)
            os.fchmod(fh.fileno(), mode)
        os.replace(tmp, path.name, src_dir_fd=dfd, dst_dir_fd=dfd)
    finally:
        os.close(dfd)


def copy_tree_into(src: Path, dst: Path, uid: int, gid: int) -> None:
    """The directories and regular files of SRC (root's own tree) copied to DST, owned UID:GID: built under a
    fresh 0700 name nobody else can enter, handed over from the leaves up, then renamed to DST."""

    def fill(source: Path, dfd: int) -> None:
        for entry in sorted(source.iterdir()):
            info = entry.lstat()
            if stat.S_ISDIR(info.st_mode):
                os.mkdir(entry.name, 0o700, dir_fd=dfd)
                sub = os.open(entry.name, _DIR, dir_fd=dfd)
                try:
                    fill(entry, sub)
                    os.fchown(sub, uid, gid)
                    os.fchmod(sub, 0o755)
                finally:
                    os.close(sub)
            elif stat.S_ISREG(info.st_mode):
                fd = os.open(
                    entry.name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd
                )
                with os.fdopen(fd, "wb") as fh:
                    fh.write(entry.read_bytes())
                    os.fchown(fh.fileno(), uid, gid)
                    os.fchmod(fh.fileno(), 0o644)

    pfd = _open_dir(dst.parent)
    try:
        tmp = _fresh(dst.name)
        os.mkdir(tmp, 0o700, dir_fd=pfd)
        top = os.open(tmp, _DIR, dir_fd=pfd)
        try:
            fill(src, top)
            os.fchown(top, uid, gid)
            os.fchmod(top, 0o755)
        finally:
            os.close(top)
        os.rename(tmp, dst.name, src_dir_fd=pfd, dst_dir_fd=pfd)
    finally:
        os.close(pfd)


def policy_bytes(path: Path):  # -> tuple[bytes, Manifest]
    """The bytes of the manifest at PATH and what they load as, read once: the bytes pinned (and shown) are
    the bytes checked. ManifestError when they do not load (a broken policy is never pinned)."""
    from tfgate.policy.manifest import parse_manifest

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise TfgateError(f"cannot read {path}: {exc.strerror or exc}") from None
    return data, parse_manifest(data, path)


def signers_bytes(path: Path) -> bytes:
    """The bytes of the allowed_signers file PATH a manifest names, once they parse as one. Root copies them
    into the world-readable policy directory, and the agent wrote the manifest: a path naming another file
    (the privileged user's credentials, /etc/shadow) must not be copied there, nor shown."""
    from tfgate.approvals.allowed_signers import parse

    try:
        data = path.read_bytes()
        parse(data.decode("utf-8"), path)
    except OSError as exc:
        raise TfgateError(f"cannot read allowed_signers {path}: {exc.strerror or exc}") from None
    except Exception:  # its content is not echoed: it may be a secret
        raise TfgateError(
            f"allowed_signers {path} is not an allowed_signers file (OpenSSH format): not pinned"
        ) from None
    return data
