"""The teaching notebook runs top to bottom, in quick mode, inside the tiny end-to-end project."""
import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "mnist_walkthrough.ipynb"


def test_notebook_runs_top_to_bottom_in_quick_mode(tiny, monkeypatch):
    project = tiny
    notebooks = project.path / "notebooks"
    notebooks.mkdir(exist_ok=True)
    copy = notebooks / NOTEBOOK.name
    shutil.copyfile(NOTEBOOK, copy)
    # The kernel inherits this environment: QUICK=1 shrinks the in-notebook training, and PATH puts
    # this virtual environment first, as the pipeline's stages expect. `python3` is the venv's kernel.
    monkeypatch.setenv("QUICK", "1")
    monkeypatch.setenv("PATH", project.env["PATH"])
    notebook = nbformat.read(copy, as_version=4)
    # Raises CellExecutionError, naming the cell and its traceback, if any cell fails.
    NotebookClient(notebook, kernel_name="python3", timeout=300, resources={"metadata": {"path": str(notebooks)}}).execute()

    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    text = "".join(output.get("text", "") for output in outputs if output.output_type == "stream")
    assert "QUICK mode" in text  # the environment reached the kernel
    assert "identical to data/processed/train.pt: True" in text  # torchvision + src.preprocess == the cache
    assert "identical predictions: True" in text  # the save/load round trip
    assert "dvc failed" not in text  # the tiny project is a git + DVC repository: the dvc commands work
    assert sum("image/png" in output.get("data", {}) for output in outputs) >= 15
