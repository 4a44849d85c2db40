"""notebooks/demo.ipynb runs top to bottom on emu (executed with nbclient)."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from fpyga.demo import host


NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "demo.ipynb"


def test_demo_notebook_runs():
    host.find_xclbin("iris")  # built (or taken from the cache) before the notebook times out on it
    host.find_xclbin("muon")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOK.parents[1])}})
    client.execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "fixed-point kernel accuracy" in outputs
    assert "batch outputs equal the per-sample outputs" in outputs
    assert "3 plots drawn" in outputs and "Model.predict equals the per-sample host" in outputs
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if "image/png" in o.get("data", {})]
    assert len(images) == 3
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
