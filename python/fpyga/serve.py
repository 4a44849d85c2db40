"""Start ``fpyga serve`` (the KServe v2 / Triton protocol server, docs/serve.md) from Python, for
tests and notebooks: the server runs as a subprocess on free loopback ports and stops with
SIGTERM, which lets it finish every request it accepted.

>>> import fpyga.serve
>>> repo = fpyga.serve.write_repository("models", {"muon": "muon.xclbin"})   # doctest: +SKIP
>>> with fpyga.serve.start(repo) as server:                                   # doctest: +SKIP
...     import tritonclient.grpc as grpcclient
...     client = grpcclient.InferenceServerClient(server.grpc_url)
...     client.is_server_live()
True
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Mapping, Sequence

__all__ = ["Server", "find_cli", "start", "write_repository"]


def find_cli() -> str:
    """The ``fpyga`` executable: ``$FPYGA_CLI``, the build tree beside this package
    (``<build>/cpp/tools/fpyga``), ``<prefix>/bin/fpyga`` or the one on PATH."""
    here = Path(__file__).resolve().parent
    candidates = [os.environ.get("FPYGA_CLI"), str(here.parent.parent / "cpp" / "tools" / "fpyga"),
                  str(Path(sys.prefix) / "bin" / "fpyga"), shutil.which("fpyga")]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    raise FileNotFoundError("the fpyga CLI was not found ($FPYGA_CLI, <build>/cpp/tools/fpyga, "
                            "<prefix>/bin/fpyga, PATH)")


def write_repository(directory, models: Mapping[str, object], version: int = 1) -> Path:
    """Lays out a model repository: ``models`` maps a name to an xclbin path, or to
    ``(xclbin, config_pbtxt_text)``. Returns the directory."""
    root = Path(directory)
    for name, spec in models.items():
        xclbin, config = (spec if isinstance(spec, tuple) else (spec, None))
        d = root / name / str(version)
        d.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(xclbin, d / "model.xclbin")
        if config is not None:
            (root / name / "config.pbtxt").write_text(config)
    return root


class Server:
    """A running ``fpyga serve``. Use :func:`start`; ``with`` stops it."""

    def __init__(self, model_repository, *, devices: Sequence[str] = (), grpc_port: int = 0,
                 http_port: int = 0, metrics_port: int = 0, extra_args: Sequence[str] = (),
                 env: Mapping[str, str] | None = None, cli: str | None = None, timeout: float = 120.0):
        self._dir = tempfile.TemporaryDirectory(prefix="fpyga_serve_")
        self.log_path = Path(self._dir.name) / "server.log"
        args = [cli or find_cli(), "serve", "--model-repository", str(model_repository),
                "--grpc-port", str(grpc_port), "--http-port", str(http_port),
                "--metrics-port", str(metrics_port)]
        if devices:
            args += ["--device", *devices]
        args += list(extra_args)
        self.args = args
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(args, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=dict(os.environ, **(env or {})))
        ports = self._wait_listening(timeout)
        #: host:port of each endpoint ("" when the server was told not to serve it, port -1)
        self.grpc_url, self.http_url, self.metrics_url = (ports.get(k, "") for k in ("grpc", "http", "metrics"))
        self.grpc_port = int(self.grpc_url.rsplit(":", 1)[1])

    def _wait_listening(self, timeout: float) -> dict:
        # The server logs {"msg": "listening", "grpc": "host:port", "http": ..., "metrics": ...}
        # once its models are loaded and its ports are bound (port 0 picks a free one, so tests
        # never race for a port).
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if event.get("msg") == "listening":
                    return event
            if self.process.poll() is not None:
                raise RuntimeError(f"fpyga serve exited with status {self.process.returncode}:\n"
                                   f"{self.log()}")
            time.sleep(0.02)
        self.process.kill()
        self.process.wait()
        raise TimeoutError(f"fpyga serve did not start listening within {timeout} s:\n{self.log()}")

    def log(self) -> str:
        """What the server wrote so far (one JSON object per line)."""
        return self.log_path.read_text(errors="replace")

    def events(self) -> list[dict]:
        """The server's structured log lines, parsed."""
        out = []
        for line in self.log().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return out

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM, then wait: the server finishes the requests it accepted and exits (0)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise TimeoutError(f"fpyga serve did not stop within {timeout} s:\n{self.log()}")
        self._log.close()
        return self.process.returncode

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
        self._dir.cleanup()


def start(model_repository, **kwargs) -> Server:
    """Starts ``fpyga serve --model-repository DIR`` on a free 127.0.0.1 port (see
    :class:`Server` for ``devices``, ``extra_args``, ``env``, ``cli``, ``timeout``)."""
    return Server(model_repository, **kwargs)
