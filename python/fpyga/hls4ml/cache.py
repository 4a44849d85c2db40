"""The build cache of ``fpyga.hls4ml.build``: one directory per content key.

``<root>/hls4ml/<key>/`` holds ``model.xclbin``, its SHA-256 in ``model.sha256`` (written last,
so an entry without it is unfinished) and ``build.log``. An entry whose xclbin no longer matches
its checksum is corrupted: it is removed and the model rebuilt. Failed builds keep their work
directory under ``<root>/hls4ml/failed/<key>/`` so the log named in the error stays readable.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

__all__ = ["store", "default_root"]


def default_root() -> Path:
    """``$FPYGA_CACHE_DIR``, else ``$XDG_CACHE_HOME/fpyga``, else ``~/.cache/fpyga``."""
    if os.environ.get("FPYGA_CACHE_DIR"):
        return Path(os.environ["FPYGA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or (Path.home() / ".cache")
    return Path(base) / "fpyga"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class store:
    """The cache under ``root`` (default :func:`default_root`)."""

    def __init__(self, root=None):
        self.root = Path(root) if root is not None else default_root()
        self.dir = self.root / "hls4ml"

    def entry(self, key: str) -> Path:
        return self.dir / key

    def fetch(self, key: str, output: Path) -> bool:
        """Copies the entry's xclbin to ``output`` when it is present and intact."""
        e = self.entry(key)
        xclbin, checksum = e / "model.xclbin", e / "model.sha256"
        if not (xclbin.is_file() and checksum.is_file()):
            return False
        if _sha256(xclbin) != checksum.read_text().strip():
            shutil.rmtree(e, ignore_errors=True)
            return False
        output.parent.mkdir(parents=True, exist_ok=True)
        tmp = output.with_name(output.name + f".tmp{os.getpid()}")
        shutil.copyfile(xclbin, tmp)
        os.replace(tmp, output)
        return True

    def put(self, key: str, xclbin: Path, log: Path) -> None:
        e = self.entry(key)
        staging = self.dir / f".{key}.{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        shutil.copyfile(xclbin, staging / "model.xclbin")
        if log.is_file():
            shutil.copyfile(log, staging / "build.log")
        (staging / "model.sha256").write_text(_sha256(staging / "model.xclbin") + "\n")
        shutil.rmtree(e, ignore_errors=True)
        try:
            os.replace(staging, e)
        except OSError:  # another process put the same key first: theirs is as good
            shutil.rmtree(staging, ignore_errors=True)

    def keep_failed(self, key: str, work: Path) -> Path:
        dest = self.dir / "failed" / key
        shutil.rmtree(dest, ignore_errors=True)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(work, dest, ignore=shutil.ignore_patterns("*.o", "*.so"))
        return dest
