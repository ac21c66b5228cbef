"""The tour notebook runs top to bottom on a tiny run and the tiny sweep."""

import os
from pathlib import Path

import nbformat
import pytest
from runconfig import REPO

nbclient = pytest.importorskip("nbclient")


@pytest.mark.slow
def test_tour_notebook_executes(tiny_sweep, monkeypatch):
    monkeypatch.setenv("FCN_RUN_DIR", str(tiny_sweep / "1"))
    monkeypatch.setenv("FCN_SWEEP_DIR", str(tiny_sweep))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.read(REPO / "notebooks" / "fcn_lit_tour.ipynb", as_version=4)

    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(REPO)}})
    client.execute()

    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) >= 4  # predictions, confusion matrix, learning curves, per-class IU
    tables = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert tables and all(b in tables[0] for b in ("alexnet", "vgg16", "googlenet"))
