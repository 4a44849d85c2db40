"""Run unmodified PYNQ code (``import pynq``, ``from pynq import Overlay, allocate``) on fpyga.

Two ways, both explicit:

- in Python, before the PYNQ code is imported::

      import fpyga
      fpyga.install_pynq_alias()
      from axi_stream_driver import NeuralNetworkOverlay   # its `from pynq import ...` gets fpyga

- from a shell, for a script: ``python -m fpyga.pynq_alias script.py [args...]``;
- in Jupyter, the kernel "Python 3 (fpyga as pynq)", installed once with
  ``python -m fpyga.pynq_alias --install-kernel [--user | --sys-prefix | --prefix DIR]``.

Submodules follow: ``import pynq.overlay``, ``from pynq.pl_server.xrt_device import XrtDevice``
and ``from pynq.ps import CPU_ARCH_IS_x86`` give fpyga's modules (the same objects as
``fpyga.overlay``...), so classes compare equal under both names.

A real PYNQ installation is never shadowed behind the user's back: when ``pynq`` is importable
from somewhere else, or already imported, the alias is refused unless ``force=True``.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import runpy
import sys
import tempfile

__all__ = ["install_kernel_spec", "install_pynq_alias", "uninstall_pynq_alias"]

KERNEL_NAME = "fpyga-pynq"
KERNEL_DISPLAY_NAME = "Python 3 (fpyga as pynq)"


class _PynqSubmodules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves ``pynq.<name>`` as ``fpyga.pynq_compat.<name>`` or ``fpyga.<name>`` while the
    alias is installed."""

    def find_spec(self, fullname, path=None, target=None):
        import fpyga

        if not fullname.startswith("pynq.") or sys.modules.get("pynq") is not fpyga:
            return None
        rest = fullname[len("pynq."):]
        for candidate in ("fpyga.pynq_compat." + rest, "fpyga." + rest):
            try:
                if importlib.util.find_spec(candidate) is not None:
                    return importlib.machinery.ModuleSpec(fullname, self,
                                                          origin=candidate)
            except ModuleNotFoundError:
                continue
        return None

    def create_module(self, spec):
        module = importlib.import_module(spec.origin)
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module):
        # The fpyga module ran already, under its own name; the import system has just set its
        # __spec__ to the pynq one: give it back its own.
        module.__spec__ = module.__spec__.loader_state


_FINDER = _PynqSubmodules()


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
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    return fpyga


def uninstall_pynq_alias() -> None:
    """Removes the alias (a no-op when ``pynq`` is not fpyga)."""
    import fpyga

    if sys.modules.get("pynq") is fpyga:
        del sys.modules["pynq"]
        for name in [n for n in sys.modules if n.startswith("pynq.")]:
            if sys.modules[name].__name__.startswith("fpyga."):
                del sys.modules[name]
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)


def install_kernel_spec(user=False, prefix=None, name=KERNEL_NAME):
    """Installs the Jupyter kernel "Python 3 (fpyga as pynq)": this interpreter, with
    ``import pynq`` giving fpyga. The kernel refuses to start where a real PYNQ is installed.

    Parameters
    ----------
    user : bool
        Install for the current user (``~/.local/share/jupyter``).
    prefix : str, optional
        Install under ``prefix/share/jupyter`` (``sys.prefix`` for this environment).
    name : str
        The kernel's name (what ``jupyter kernelspec list`` shows).

    Returns
    -------
    str
        The directory of the installed kernel spec.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    spec = {
        "argv": [sys.executable, "-m", "fpyga.pynq_alias", "--kernel", "-f",
                 "{connection_file}"],
        "display_name": KERNEL_DISPLAY_NAME,
        "language": "python",
        "metadata": {"debugger": True},
    }
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "kernel.json"), "w") as f:
            json.dump(spec, f, indent=1)
        return KernelSpecManager().install_kernel_spec(tmp, name, user=user, prefix=prefix)


def _run_kernel(argv):
    try:
        install_pynq_alias()
    except RuntimeError as e:
        print(f"fpyga.pynq_alias: the kernel {KERNEL_DISPLAY_NAME!r} will not start: {e}",
              file=sys.stderr)
        return 1
    from ipykernel import kernelapp

    kernelapp.launch_new_instance(argv=argv)
    return 0


_USAGE = """usage: python -m fpyga.pynq_alias [--force] script.py [args...]
       python -m fpyga.pynq_alias --install-kernel [--user | --sys-prefix | --prefix DIR]
Runs a PYNQ script unchanged, with `import pynq` giving fpyga; or installs the Jupyter kernel
"Python 3 (fpyga as pynq)" that does the same for notebooks."""


def _install_kernel_main(args):
    user, prefix = False, None
    while args:
        a = args.pop(0)
        if a == "--user":
            user = True
        elif a == "--sys-prefix":
            prefix = sys.prefix
        elif a == "--prefix" and args:
            prefix = args.pop(0)
        else:
            print(f"fpyga.pynq_alias --install-kernel: unknown option {a!r}\n{_USAGE}",
                  file=sys.stderr)
            return 2
    path = install_kernel_spec(user=user, prefix=prefix)
    print(f"installed the Jupyter kernel {KERNEL_DISPLAY_NAME!r} ({KERNEL_NAME}) in {path}")
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "--install-kernel":
        return _install_kernel_main(argv[1:])
    if argv and argv[0] == "--kernel":
        return _run_kernel(argv[1:])
    force = False
    if argv and argv[0] == "--force":
        force, argv = True, argv[1:]
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE, file=sys.stderr)
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
