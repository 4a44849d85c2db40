"""notebooks/demo.ipynb runs top to bottom on emu (executed with nbclient)."""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from fpyga.demo import host

from conftest import missing_input

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "demo.ipynb"


def test_demo_notebook_runs():
    try:
        host.find_xclbin("iris", os.environ.get("FPYGA_XCLBIN_DIR"))
        host.find_xclbin("muon", os.environ.get("FPYGA_XCLBIN_DIR"))
    except FileNotFoundError as e:
        missing_input(str(e))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parents[1])}})
    client.execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "fixed-point kernel accuracy" in outputs
    assert "batch outputs equal the per-sample outputs" in outputs
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
