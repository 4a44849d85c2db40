"""Host-wide claims on devices, so that the workers of one host never share a device.

Each claimed device is an exclusive ``flock`` on a file named after it in a directory every
process of the host sees (``$FPYGA_LOCK_DIR``, default ``<tmp>/fpyga-locks-<uid>``). The kernel
drops the lock when its process ends however it ends (killed included), so the worker that Dask
starts in place of a dead one finds the device free again; nothing needs cleaning up.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import tempfile
from pathlib import Path

__all__ = ["DeviceBusyError", "DeviceClaim", "lock_dir"]


class DeviceBusyError(RuntimeError):
    """The device is claimed by another process of this host."""


def lock_dir() -> Path:
    """The directory of the host's device claims (created on first use)."""
    d = os.environ.get("FPYGA_LOCK_DIR")
    path = Path(d) if d else Path(tempfile.gettempdir()) / f"fpyga-locks-{os.getuid()}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file_name(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", spec) + ".lock"


class DeviceClaim:
    """An exclusive claim of this process on one device of the host, held until :meth:`release`
    or the end of the process.

    Raises
    ------
    DeviceBusyError
        Another process of the host holds the device (its pid is in the message).
    """

    def __init__(self, spec: str):
        self.spec = spec
        self.path = lock_dir() / _file_name(spec)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = ""
            try:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip()
            except OSError:
                pass
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise DeviceBusyError(
                    f"device {spec} is claimed by another process on this host"
                    + (f" (pid {holder})" if holder else "") + f"; lock {self.path}") from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Gives the device back (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor drops the flock

    def __repr__(self):
        return f"<DeviceClaim {self.spec} {'held' if self.held else 'released'}>"
