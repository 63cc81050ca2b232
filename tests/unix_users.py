"""Real Unix users for the protected-mode tests: an agent user and a privileged user, and a Python runtime both
can execute (tfgate's checkout and the venv, run by an interpreter outside root's home). Root only."""

from __future__ import annotations

import os
import pwd
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
AGENT = "tfgt-agent"
PRIV = "tfgt-priv"
needs_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="real Unix users and sudo need root (CI runs as root)"
)


@dataclass(frozen=True)
class Runtime:
    """How another user runs this checkout's tfgate: an interpreter and PYTHONPATH they can read."""

    python: str
    pythonpath: str

    def env(self, **extra: str) -> dict[str, str]:
        base = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "PYTHONPATH": self.pythonpath,
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "LANG": "C.UTF-8",
        }
        return {**base, **extra}


def ensure_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    proc = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", "--home-dir", "/nonexistent", name],
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 9):  # 9: created meanwhile by another test process
        raise RuntimeError(f"useradd {name}: {proc.stderr}")
    return pwd.getpwnam(name)


def _traversable(path: Path) -> bool:
    """Can a user who is neither the owner nor in the group reach PATH (o+x on every directory above)?"""
    for parent in [path, *path.parents] if path.is_dir() else list(path.parents):
        if not os.stat(parent).st_mode & 0o001:
            return False
    return True


def runtime() -> Runtime:
    """The interpreter and PYTHONPATH: this venv's when others can reach it, else the system Python of the
    same version with the venv's site-packages. On a CI machine (CI set) missing o+x bits are added."""
    site = Path(sysconfig.get_paths()["purelib"])
    needed = [REPO, site, Path(os.path.realpath(sys.executable))]
    blocked = [p for p in needed if not _traversable(p)]
    python = sys.executable
    if Path(os.path.realpath(sys.executable)) in blocked:
        candidate = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
        if candidate.exists():
            python = str(candidate)
            blocked.remove(Path(os.path.realpath(sys.executable)))
    if blocked and os.environ.get("CI"):
        for p in blocked:
            for parent in [p, *p.parents]:
                if parent.is_dir():
                    parent.chmod(os.stat(parent).st_mode | 0o005)
        blocked = []
    if blocked:
        pytest.skip(f"other users cannot reach {blocked[0]} (tfgate's checkout or venv)")
    return Runtime(python, f"{REPO}{os.pathsep}{site}")


def run_as(user: str, rt: Runtime, args: list[str], *, cwd: Path, env: dict[str, str] | None = None,
           stdin: int | None = subprocess.DEVNULL) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """ARGS as USER (runuser: no password, a clean environment)."""
    envs = [f"{k}={v}" for k, v in (env or rt.env()).items()]
    return subprocess.run(
        ["runuser", "-u", user, "--", "env", "-i", *envs, *args],
        cwd=cwd, capture_output=True, text=True, stdin=stdin,
    )  # fmt: skip
