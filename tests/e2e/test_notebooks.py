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


def _execute(path: Path, tmp_path: Path) -> list:
    """Run the notebook in ``tmp_path``; the code cells' outputs, in order."""
    import nbformat
    from nbclient import NotebookClient

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
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]


def _marks(path: Path) -> list:
    # notebook 05 maps and runs the whole bring-your-own-data example itself (~100 s on 2 cores):
    # slow (``make test-slow``); tests/e2e/test_own_data_pipeline.py runs the same path in the suite
    return [pytest.mark.slow] if path.name.startswith("05_") else []


@pytest.mark.parametrize("path", [pytest.param(p, id=p.name, marks=_marks(p)) for p in NOTEBOOKS])
def test_notebook_executes(world, path: Path, tmp_path, monkeypatch):
    assert world["first"].success
    # notebook 05 maps and runs the bring-your-own-data example in a directory of its own
    monkeypatch.setenv("CAMPAIGN_EXAMPLE_DIR", str(tmp_path / "example"))
    _execute(path, tmp_path)


def test_the_model_notebook_shows_each_arm_of_a_multi_arm_model(example_run, tmp_path, monkeypatch):
    """Notebook 06 on the bring-your-own-data example (three arms): a curve, a metric row per
    treatment arm."""
    assert example_run["result"].success
    for key, value in example_run["env"].items():
        monkeypatch.setenv(key, value)
    outputs = _execute(PROJECT_DIR / "notebooks" / "06_explore_the_uplift_model.ipynb", tmp_path)
    texts = [o.get("data", {}).get("text/plain", "") for o in outputs]
    per_arm = next(t for t in texts if "qini_ci_low" in t)
    assert "offer" in per_arm and "reminder" in per_arm, per_arm
    assert any("4 Axes" in t for t in texts), "one Qini and one uplift plot per arm"
