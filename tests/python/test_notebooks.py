"""Executes the Alveo-PYNQ introduction notebooks in notebooks/ (on the default device, emu here).

Each notebook asserts its own results; a failing cell fails the test with the cell's error.
"""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
INTRO = sorted(NOTEBOOKS.glob("[0-9]-*.ipynb"))


def test_intro_notebooks_exist():
    names = [p.name for p in INTRO]
    assert names == ["1-vector-addition.ipynb", "2-exploring-bitstream.ipynb", "3-vadd-vmult.ipynb",
                     "4-kernel-optimization.ipynb", "5-multiple-devices.ipynb",
                     "6-driver-classes.ipynb", "7-accelerator-scheduling.ipynb",
                     "8-power-measurement.ipynb"]


@pytest.mark.parametrize("path", INTRO, ids=[p.stem for p in INTRO])
def test_notebook_runs(path, xclbin_dir, monkeypatch):
    # The kernel process inherits the environment: point it at the same xclbins as the tests.
    monkeypatch.setenv("FPYGA_XCLBIN_DIR", str(xclbin_dir))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
