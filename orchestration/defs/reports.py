"""The campaign report: notebook 04 executed on each run's data and saved as HTML.

The notebook is the analysts' report (audiences, decisions by reason, sends, measured lift with
intervals, run health); executing it per run gives operators the same pages for every run, linked
from the asset in the UI. It sits downstream of the sends, so a broken report never holds a
message back, but a cell that raises fails this asset with that cell's error.
"""

import re
import time
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetKey,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from orchestration.resources import CampaignSettings

NOTEBOOK = "04_campaign_report.ipynb"
# Generous: the notebook reads Parquet files and a SQLite ledger; the kernel starts in seconds.
CELL_TIMEOUT_SECONDS = 600


def _plain(traceback: list[str]) -> str:
    """The kernel's traceback without its terminal colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(traceback))


def report_path(reports_dir: Path, run_id: str) -> Path:
    return Path(reports_dir) / f"campaign_report_{run_id[:8]}.html"


def execute_report(notebook: Path, data_dir: Path, html_path: Path, run_id: str) -> float:
    """Execute ``notebook`` with papermill against ``data_dir`` and write it as HTML.

    Returns the execution seconds. The HTML is written even when a cell fails (it then shows the
    traceback); the papermill error is re-raised after it.
    """
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    html_path.parent.mkdir(parents=True, exist_ok=True)
    executed = html_path.with_suffix(".ipynb")
    started = time.perf_counter()
    error: Exception | None = None
    try:
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            # The notebook's `parameters` cell: the run's data directory and run id.
            parameters={"data_dir": str(data_dir), "run_id": run_id},
            kernel_name="python3",
            cwd=str(html_path.parent),
            progress_bar=False,
            log_output=False,
            execution_timeout=CELL_TIMEOUT_SECONDS,
        )
    except Exception as exc:  # PapermillExecutionError (a cell raised) or a kernel failure
        error = exc
    seconds = time.perf_counter() - started
    if executed.exists():
        # A report: outputs and the markdown text, without the code cells.
        exporter = HTMLExporter(
            exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
        )
        body, _ = exporter.from_notebook_node(nbformat.read(executed, as_version=4))
        html_path.write_text(body, encoding="utf-8")
        executed.unlink()  # the HTML is the artifact; the executed notebook adds nothing to it
    if error is not None:
        raise error
    return seconds


@asset(
    deps=[AssetKey("campaign_results"), AssetKey("campaign_sends")],
    group_name="observability",
    owners=["team:crm"],
    kinds={"jupyter", "html"},
    description=(
        "The campaign report of this run: notebook 04 (audiences, decisions by reason, sends, "
        "measured lift with 95 % intervals, run health) executed with papermill on the run's data "
        "directory and saved as HTML under data/reports/. Downstream of the sends: a failing "
        "notebook fails this asset with the cell's error and never holds a send back."
    ),
)
def campaign_report(
    context: AssetExecutionContext, settings: CampaignSettings
) -> MaterializeResult:
    from papermill.exceptions import PapermillExecutionError

    s = settings.get()
    notebook = s.project_dir / "notebooks" / NOTEBOOK
    html = report_path(s.reports_dir, context.run.run_id)
    try:
        seconds = execute_report(notebook, s.data_dir, html, context.run.run_id)
    except PapermillExecutionError as exc:
        metadata = {"report": MetadataValue.path(str(html))} if html.exists() else {}
        raise Failure(
            description=(
                f"{NOTEBOOK} failed in cell {exc.exec_count} (index {exc.cell_index}): "
                f"{exc.ename}: {exc.evalue}"
            ),
            metadata={**metadata, "traceback": MetadataValue.text(_plain(exc.traceback))},
        ) from exc
    context.log.info(f"campaign report: {html} ({seconds:.1f} s)")
    return MaterializeResult(
        metadata={
            "report": MetadataValue.path(str(html)),
            "execution_seconds": round(seconds, 2),
            "notebook": MetadataValue.path(str(notebook)),
        }
    )
