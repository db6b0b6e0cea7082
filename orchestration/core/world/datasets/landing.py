"""Land a public dataset as the raw data contract: what the raw assets do when
``CAMPAIGN_DATASET`` names one (today ``hillstrom``).

A real dataset replaces the synthetic world, not joins it: it writes no ground truth (the true
effect is unknown), plays in no feedback (only the synthetic world can answer our sends), and it
refuses a data directory that already holds the other kind of data, so one warehouse never mixes
a generated world with a real campaign.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from orchestration.settings import PROJECT_DIR, Settings

MARKER_FILE = "DATASET"  # in the data directory: which dataset its raw data came from


class DatasetMixError(RuntimeError):
    """The data directory holds another dataset's data."""


def download_dir(dataset: str, settings: Settings | None = None) -> Path:
    """Where ``dataset``'s download is cached: shared by every data directory
    (``Settings.download_dir``, ``CAMPAIGN_DOWNLOAD_DIR`` to move it)."""
    return (settings or Settings.from_env()).download_dir / dataset


def recorded_dataset(data_dir: Path) -> str | None:
    """The dataset whose raw data is in ``data_dir`` (None: empty or from before the marker).

    A directory without the marker but with the synthetic world's ground truth holds a
    synthetic world.
    """
    marker = Path(data_dir) / MARKER_FILE
    if marker.is_file():
        return marker.read_text().strip() or None
    if (Path(data_dir) / "ground_truth" / "customer_uplift.parquet").exists():
        return "synthetic"
    return None


def claim_data_dir(data_dir: Path, dataset: str) -> None:
    """Record ``dataset`` as the data directory's; raise when it holds another generated or
    public dataset (a team's own ``files`` may replace either: they are the team's call)."""
    previous = recorded_dataset(data_dir)
    if dataset != "files" and previous not in (None, "files", dataset):
        hint = (
            f"{PROJECT_DIR / 'data' / dataset} (the default of `campaign run --dataset {dataset}`)"
            if dataset != "synthetic"
            else f"{PROJECT_DIR / 'data'}"
        )
        raise DatasetMixError(
            f"the data directory {data_dir} holds the {previous!r} dataset, not "
            f"CAMPAIGN_DATASET={dataset!r}: one warehouse must not mix them. Point "
            f"CAMPAIGN_DATA_DIR at another directory, e.g. {hint}, or delete {data_dir}"
        )
    Path(data_dir).mkdir(parents=True, exist_ok=True)
    (Path(data_dir) / MARKER_FILE).write_text(dataset + "\n")


def land_hillstrom(
    settings: Settings, as_of: datetime | None = None, seed: int | None = None
) -> dict[str, object]:
    """Fetch (cached) and map the Hillstrom campaign into ``settings.raw_dir``; run metadata.

    ``as_of`` defaults to :data:`~orchestration.core.world.datasets.hillstrom.PIPELINE_AS_OF`, the
    anchor the world clock of ``campaign run --dataset hillstrom`` is pinned to.
    """
    from orchestration.core.world.datasets import hillstrom

    claim_data_dir(settings.data_dir, "hillstrom")
    as_of = as_of or hillstrom.PIPELINE_AS_OF
    seed = hillstrom.PROTOCOL_SEED if seed is None else seed
    started = time.perf_counter()
    path = hillstrom.fetch_hillstrom(download_dir("hillstrom", settings))
    frame = hillstrom.load_hillstrom(path)
    from orchestration.core.world.attributes import load_attributes

    rows = hillstrom.to_raw_contract(
        frame,
        as_of,
        settings.raw_dir,
        seed=seed,
        attributes=load_attributes(settings.attributes_file),
    )
    return {
        "source": str(path),
        "source_rows": len(frame),
        "as_of": as_of.isoformat(),
        "end_of_data": hillstrom.end_of_data(as_of).isoformat(),
        "seed": seed,
        "campaign_id": hillstrom.CAMPAIGN_ID,
        "ground_truth": "none: the true effect of a real campaign is unknown",
        "feedback": "none: only the synthetic world can answer our sends",
        "mapping_seconds": round(time.perf_counter() - started, 2),
        **{f"mapped_{name}": n for name, n in rows.items()},
    }
