"""Run unmodified PYNQ code (``import pynq``, ``from pynq import Overlay, allocate``) on fpyga.

Two ways, both explicit:

- in Python, before the PYNQ code is imported::

      import fpyga
      fpyga.install_pynq_alias()
      from axi_stream_driver import NeuralNetworkOverlay   # its `from pynq import ...` gets fpyga

- from a shell, for a script: ``python -m fpyga.pynq_alias script.py [args...]``.

A real PYNQ installation is never shadowed behind the user's back: when ``pynq`` is importable
from somewhere else, or already imported, the alias is refused unless ``force=True``.
"""

from __future__ import annotations

import importlib.util
import runpy
import sys

__all__ = ["install_pynq_alias", "uninstall_pynq_alias"]


def install_pynq_alias(force: bool = False):
    """Makes ``import pynq`` give the ``fpyga`` package for the rest of this process.

    Parameters
    ----------
    force : bool
        Alias even when a real PYNQ is installed (it then stays unreachable in this process).

    Returns
    -------
    module
        The ``fpyga`` package, now also ``sys.modules["pynq"]``.

    Raises
    ------
    RuntimeError
        A real PYNQ is importable or already imported, and ``force`` is false.
    """
    import fpyga

    current = sys.modules.get("pynq")
    if current is fpyga:
        return fpyga
    if not force:
        if current is not None:
            raise RuntimeError(f"pynq is already imported from {getattr(current, '__file__', '?')}; fpyga will not "
                               f"replace it (pass force=True to alias anyway)")
        spec = importlib.util.find_spec("pynq")
        if spec is not None:
            raise RuntimeError(f"a real PYNQ is installed ({spec.origin}); fpyga will not shadow it. Use "
                               f"`import fpyga as pynq` in your code, or install_pynq_alias(force=True)")
    sys.modules["pynq"] = fpyga
    return fpyga


def uninstall_pynq_alias() -> None:
    """Removes the alias (a no-op when ``pynq`` is not fpyga)."""
    import fpyga

    if sys.modules.get("pynq") is fpyga:
        del sys.modules["pynq"]


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    force = False
    if argv and argv[0] == "--force":
        force, argv = True, argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m fpyga.pynq_alias [--force] script.py [args...]\n"
              "Runs a PYNQ script unchanged, with `import pynq` giving fpyga.", file=sys.stderr)
        return 2 if not argv else 0
    try:
        install_pynq_alias(force=force)
    except RuntimeError as e:
        print(f"fpyga.pynq_alias: {e}", file=sys.stderr)
        return 1
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
