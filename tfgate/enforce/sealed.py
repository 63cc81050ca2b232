"""The checked plan's bytes, read once and held where nobody can change them until Terraform applies them.

On Linux the bytes go into a sealed memfd (``memfd_create`` + ``F_ADD_SEALS``: no write, grow, shrink or
further sealing): it has no name in any directory, so nothing can replace it, and its contents cannot be
changed even through a writable descriptor. Terraform reads it through ``/proc/<pid>/fd/<n>`` (``show -json``
for the check and ``apply`` for the apply, both the same bytes). Elsewhere the bytes go into a fresh 0700
directory of the current user, re-hashed before the apply: that closes the race against other users, not
against the same user (which protected mode is for).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tfgate.errors import TfgateError


@dataclass
class SealedPlan:
    """A read-only copy of a plan file's bytes and the path Terraform reads it from."""

    path: Path
    sha256: str
    kind: str  # "memfd" | "private-dir"
    _fd: int | None = None
    _dir: Path | None = None

    def current_sha256(self) -> str:
        """The hash of what Terraform will read now (unchanged for a sealed memfd, by construction)."""
        h = hashlib.sha256()
        with open(self.path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> SealedPlan:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def read_once(source: Path) -> bytes:
    """The plan file's bytes, read in one pass (PlanError, exit 2, when unreadable); what is sealed, hashed,
    checked and applied is this one copy, whatever happens to the file afterwards."""
    from tfgate.plan.loader import read_source

    data = read_source(source)
    return data if isinstance(data, bytes) else bytes(data)


def seal(data: bytes) -> SealedPlan:
    """DATA in a sealed memfd where the kernel offers one, else in a private 0700 directory."""
    digest = hashlib.sha256(data).hexdigest()
    if sys.platform.startswith("linux") and hasattr(os, "memfd_create"):
        import fcntl

        try:
            fd = os.memfd_create("tfgate-plan", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        except OSError:
            fd = -1
        if fd >= 0:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                seals = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL
                fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            except OSError as exc:
                os.close(fd)
                raise TfgateError(f"cannot seal the plan in memory: {exc.strerror or exc}") from None
            return SealedPlan(Path(f"/proc/{os.getpid()}/fd/{fd}"), digest, "memfd", _fd=fd)
    private = Path(tempfile.mkdtemp(prefix="tfgate-apply-"))
    copy = private / "plan.bin"
    with open(copy, "xb") as fh:
        fh.write(data)
    copy.chmod(0o400)
    return SealedPlan(copy, digest, "private-dir", _dir=private)
