"""Small records passed between pipeline steps: where a step's output lives and what it was
computed for. Plain data, so any step (or a notebook) can read them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class ScoringBatch:
    """A run's scoring output and the decision time it was computed for."""

    path: str
    decided_at: datetime
    feature_version: str
    feature_timestamp: datetime | None
    model_version: str = ""


@dataclass(frozen=True)
class DecisionBatch:
    """A run's decisions file (one row per campaign and candidate)."""

    path: str
    decided_at: datetime
    send_date: str
    campaigns: tuple[str, ...]


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """A small Markdown table for Dagster metadata previews."""
    if not rows:
        return "(none)"
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for column in columns:
            value = row.get(column)
            cells.append(f"{value:.4f}" if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
