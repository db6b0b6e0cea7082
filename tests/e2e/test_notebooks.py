"""The analyst notebooks execute top to bottom on the pipeline's output (committed without
outputs; executed here with the project's kernel)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from orchestration.settings import PROJECT_DIR

NOTEBOOKS = sorted((PROJECT_DIR / "notebooks").glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.e2e


def test_notebooks_are_committed_without_outputs():
    import nbformat

    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        dirty = [
            i
            for i, c in enumerate(notebook.cells)
            if c.cell_type == "code" and (c.outputs or c.execution_count)
        ]
        assert dirty == [], (
            f"{path.name}: cells {dirty} carry outputs; clear them before committing"
        )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes(world, path: Path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    assert world["first"].success
    # notebook 05 maps and runs the bring-your-own-data example in a directory of its own
    monkeypatch.setenv("CAMPAIGN_EXAMPLE_DIR", str(tmp_path / "example"))
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    ).execute()
    errors = [
        o
        for c in notebook.cells
        if c.cell_type == "code"
        for o in c.outputs
        if o.output_type == "error"
    ]
    assert errors == []
    print(f"{path.name}: {time.perf_counter() - started:.1f} s")
