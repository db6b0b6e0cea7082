"""Gates on a campaign's audience itself: its size, its composition and its selection rates.

Three verdicts per campaign and run, each computed from the run's decisions, ``dim_customers``
and (for the size) the campaign's released history; the Dagster checks in
``orchestration.defs.campaigns`` are thin shells over them.

- **size** (misrouting guard, ``audience_size_within_band``): the day's audience (this run's
  recipients plus those of runs already released for the same send day) must lie inside the band
  declared in the campaign file (``expected_audience.min/max``) and, once the campaign has
  ``HISTORY_MIN_DAYS`` released send days, within ``HISTORY_FACTOR`` x / 1 / ``HISTORY_FACTOR``
  of the median of its last ``HISTORY_DAYS`` released send days. The history is read from the
  ledger's ``releases`` table (which runs were released, and not revoked, with messages of the
  campaign) and the decision files of those runs (how many recipients each had). Same-day runs
  are summed into one send day, so a re-run that tops up the day is not "a small audience".
- **composition** (``audience_composition_matches_eligible``): the audience's share of each
  region and tenure band against the eligible population's share (candidates that passed the
  consent, suppression, contact point, global control and eligibility rules); a segment whose
  share differs by more than ``COMPOSITION_MAX_SHARE_DIFF`` (absolute) blocks. Audiences smaller
  than ``COMPOSITION_MIN_AUDIENCE`` are too small to judge.
- **fairness** (``audience_selection_rates_fair``): selection rate (send or deferred / eligible)
  per segment of region, tenure band, every ``fairness.sensitive_columns`` of dim_customers and
  every attribute declared ``sensitive`` (``sensitive_attributes.py``);
  the four-fifths ratio (lowest / highest rate, segments with at least
  ``FAIRNESS_MIN_SEGMENT_SIZE`` eligible) must be at least ``fairness.min_ratio``. Its mode says
  whether a low ratio warns or blocks.

A dry-run campaign sends nothing: its verdicts are reported but never block. Each run's
segment table and verdicts are written to ``<reports>/audience_guards/run=<run_id>.json``
(:func:`write_guard_report`), which notebook 04 reads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.decision_store import RECIPIENT_DECISIONS, run_file

# --- defaults (a campaign file overrides them; see campaigns/README.md) -----------------------
HISTORY_FACTOR = 3.0  # today's audience above 3x or below 1/3 of the history's median blocks
HISTORY_DAYS = 7  # the median is over the last 7 released send days of the campaign ...
HISTORY_MIN_DAYS = 3  # ... once it has at least 3 of them
COMPOSITION_MAX_SHARE_DIFF = 0.25  # |audience share - eligible share| of any segment
COMPOSITION_MIN_AUDIENCE = 50  # smaller audiences are too small to judge their composition
FAIRNESS_MIN_SEGMENT_SIZE = 100  # segments with fewer eligible customers are left out

# The reasons that come before eligibility in the engine (orchestration.core.decisioning.engine):
# a candidate with one of them was never eligible for the campaign.
NOT_ELIGIBLE_REASONS = (
    "global_control",
    "no_consent_on_channel",
    "suppressed",
    "no_verified_contact_point",
    "not_eligible",
    "invalid_customer_data",
)
# Tenure bands: (lower bound in days, label); a band runs up to the next bound. Whole years:
# a first band of months is small (under 6 % of the eligible on the e2e world) and catches the
# model's legitimate preference for new customers as a four-fifths failure on every run.
TENURE_BANDS = ((0, "<1y"), (365, "1-2y"), (730, "2-3y"), (1095, "3y+"))
BASE_DIMENSIONS = ("region", "tenure_band")
MISSING = "(missing)"
# Numeric sensitive columns with more distinct values than this are cut into quintiles.
MAX_CATEGORIES = 10
REPORT_DIR = "audience_guards"


@dataclass(frozen=True)
class GuardDefaults:
    """The defaults a campaign file's ``null`` falls back to (the shell may pass settings)."""

    history_factor: float = HISTORY_FACTOR
    history_days: int = HISTORY_DAYS
    history_min_days: int = HISTORY_MIN_DAYS
    max_share_diff: float = COMPOSITION_MAX_SHARE_DIFF
    min_audience: int = COMPOSITION_MIN_AUDIENCE
    min_segment_size: int = FAIRNESS_MIN_SEGMENT_SIZE

    def for_campaign(self, campaign: Campaign) -> GuardDefaults:
        """These defaults with the campaign file's overrides applied."""
        band, comp, fair = campaign.expected_audience, campaign.composition, campaign.fairness
        overrides = {
            "history_factor": band.history_factor,
            "history_days": band.history_days,
            "history_min_days": band.history_min_days,
            "max_share_diff": comp.max_share_diff,
            "min_audience": comp.min_audience,
            "min_segment_size": fair.min_segment_size,
        }
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class GuardResult:
    """One verdict: ``passed``; ``blocking`` says whether a failure stops the sends (ERROR) or
    only warns; the evidence as scalars (``metadata``), JSON (``details``) and table rows."""

    name: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "blocking": self.blocking,
            "description": self.description,
            **self.metadata,
            **self.details,
        }


def _number(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


# --- the candidates' segments -----------------------------------------------------------------


def tenure_band(days: pd.Series) -> pd.Series:
    """Days since sign-up -> the TENURE_BANDS label (missing stays missing)."""
    bounds = [b for b, _ in TENURE_BANDS]
    codes = np.searchsorted(bounds, days.fillna(-1).to_numpy(), side="right") - 1
    labels = np.array([label for _, label in TENURE_BANDS], dtype=object)
    out = np.where(codes >= 0, labels[np.clip(codes, 0, None)], MISSING)
    return pd.Series(out, index=days.index, dtype=object).where(days.notna(), MISSING)


def _categorical(values: pd.Series) -> pd.Series:
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if numeric and values.nunique(dropna=True) > MAX_CATEGORIES:
        binned = pd.qcut(values, q=5, duplicates="drop")
        return binned.astype(str).where(values.notna(), MISSING)
    return values.astype(str).where(values.notna(), MISSING)


def segment_frame(
    rows: pd.DataFrame,
    customers: pd.DataFrame,
    decided_at: datetime,
    sensitive_columns: tuple[str, ...] | list[str] = (),
) -> pd.DataFrame:
    """One row per candidate of one campaign's decisions: ``eligible``, ``selected`` and its
    segment in ``region``, ``tenure_band`` and each sensitive column found in ``customers``
    (dim_customers). Candidates unknown to ``customers`` fall in the ``(missing)`` segment."""
    wanted = ["customer_id", "region", "signed_up_at"]
    wanted += [c for c in sensitive_columns if c in customers.columns and c not in wanted]
    present = [c for c in wanted if c in customers.columns]
    frame = rows[["customer_id", "decision", "reason"]].merge(
        customers[present].drop_duplicates("customer_id"), on="customer_id", how="left"
    )
    moment = pd.Timestamp(decided_at)
    moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")
    signed_up = (
        pd.to_datetime(frame["signed_up_at"], utc=True)
        if "signed_up_at" in frame
        else pd.Series(pd.NaT, index=frame.index, dtype="datetime64[ns, UTC]")
    )
    out = pd.DataFrame(
        {
            "customer_id": frame["customer_id"].to_numpy(),
            "eligible": ~frame["reason"].isin(NOT_ELIGIBLE_REASONS).to_numpy(),
            "selected": frame["decision"].isin(RECIPIENT_DECISIONS).to_numpy(),
            "region": _categorical(frame["region"])
            if "region" in frame
            else pd.Series(MISSING, index=frame.index),
            "tenure_band": tenure_band((moment - signed_up).dt.days),
        }
    )
    for column in sensitive_columns:
        if column in frame and column not in out:
            out[column] = _categorical(frame[column]).to_numpy()
    return out


def segment_table(segments: pd.DataFrame, dimensions: tuple[str, ...]) -> pd.DataFrame:
    """Per dimension and segment: eligible and selected customers, each side's share of its
    total, the share difference (audience - eligible) and the selection rate."""
    eligible = segments[segments["eligible"]]
    selected_total = int(eligible["selected"].sum())
    frames = []
    for dimension in dimensions:
        if dimension not in segments:
            continue
        grouped = eligible.groupby(dimension, observed=True)["selected"].agg(["size", "sum"])
        table = pd.DataFrame(
            {
                "dimension": dimension,
                "segment": grouped.index.astype(str),
                "eligible": grouped["size"].astype(int).to_numpy(),
                "selected": grouped["sum"].astype(int).to_numpy(),
            }
        )
        total = max(len(eligible), 1)
        table["eligible_share"] = table["eligible"] / total
        table["audience_share"] = table["selected"] / selected_total if selected_total else 0.0
        table["share_diff"] = table["audience_share"] - table["eligible_share"]
        table["selection_rate"] = table["selected"] / table["eligible"].clip(lower=1)
        frames.append(table.sort_values("segment"))
    columns = ["dimension", "segment", "eligible", "selected", "eligible_share"]
    columns += ["audience_share", "share_diff", "selection_rate"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


# --- size ---------------------------------------------------------------------------------------


def released_audiences(
    decisions_dir: Path,
    releases: pd.DataFrame,
    campaigns: dict[str, int],
    exclude_run: str | None = None,
) -> pd.DataFrame:
    """Recipients per (released run, campaign) from the runs' decision files.

    ``releases``: the ledger's ``releases`` table (``SendLedger.releases()``); only ``released``
    (not revoked) runs listing the campaign count. ``campaigns``: name -> how many of its latest
    released send days are needed (the rest are not read). Columns: run_id, send_date,
    released_at, campaign, recipients.
    """
    columns = ["run_id", "send_date", "released_at", "campaign", "recipients"]
    if releases is None or releases.empty or not campaigns:
        return pd.DataFrame(columns=columns)
    live = releases[(releases["status"] == "released") & (releases["run_id"] != exclude_run)]
    if live.empty:  # e.g. only releases awaiting approval or revoked: no history yet
        return pd.DataFrame(columns=columns)
    wanted: dict[str, set[str]] = {}  # run_id -> campaigns to count in it
    for name, days in campaigns.items():
        mine = live[live["campaigns"].map(lambda raw, n=name: n in json.loads(raw or "[]"))]
        latest = sorted(mine["send_date"].unique(), reverse=True)[:days]
        for run_id in mine.loc[mine["send_date"].isin(latest), "run_id"]:
            wanted.setdefault(str(run_id), set()).add(name)
    rows = []
    for release in live[live["run_id"].isin(wanted)].itertuples(index=False):
        path = run_file(decisions_dir, release.send_date, release.run_id)
        if not path.exists():
            found = sorted(Path(decisions_dir).glob(f"decided_on=*/run={release.run_id}.parquet"))
            if not found:
                continue  # its decisions were removed: the day is left out of the history
            path = found[-1]
        decisions = pd.read_parquet(path, columns=["campaign", "decision"])
        counted = decisions[decisions["decision"].isin(RECIPIENT_DECISIONS)]
        counts = counted["campaign"].value_counts()
        for name in sorted(wanted[str(release.run_id)]):
            rows.append(
                (
                    release.run_id,
                    release.send_date,
                    release.released_at,
                    name,
                    int(counts.get(name, 0)),
                )
            )
    return pd.DataFrame(rows, columns=columns)


def size_verdict(
    campaign: Campaign,
    recipients: int,
    send_date: str,
    history: pd.DataFrame,
    defaults: GuardDefaults | None = None,
) -> GuardResult:
    """The misrouting guard of one campaign's run (see the module doc).

    ``recipients``: this run's send and deferred decisions of the campaign; ``history``: rows of
    :func:`released_audiences` (any campaigns; other runs only).
    """
    d = (defaults or GuardDefaults()).for_campaign(campaign)
    mine = history[history["campaign"] == campaign.name] if len(history) else history
    by_day = (
        mine.groupby("send_date")["recipients"].sum().sort_index(ascending=False)
        if len(mine)
        else pd.Series(dtype="int64", index=pd.Index([], dtype=object))
    )
    earlier_today = int(by_day.get(send_date, 0))
    audience = int(recipients) + earlier_today
    past = by_day[by_day.index < send_date].head(d.history_days)
    applied = len(past) >= d.history_min_days
    median = float(past.median()) if len(past) else None
    low = median / d.history_factor if applied and median is not None else None
    high = median * d.history_factor if applied and median is not None else None
    band = campaign.expected_audience
    failures = []
    if band.min is not None and audience < band.min:
        failures.append(f"{audience} below the declared minimum {band.min}")
    if band.max is not None and audience > band.max:
        failures.append(f"{audience} above the declared maximum {band.max}")
    if low is not None and audience < low:
        failures.append(
            f"{audience} below 1/{d.history_factor:g} of the median {median:g} of the last "
            f"{len(past)} released send days"
        )
    if high is not None and audience > high:
        failures.append(
            f"{audience} above {d.history_factor:g}x the median {median:g} of the last "
            f"{len(past)} released send days"
        )
    history_text = (
        f"history band [{low:.0f}, {high:.0f}] (median {median:g} of {len(past)} released days)"
        if applied
        else f"no history band yet ({len(past)} of {d.history_min_days} released send days)"
    )
    declared = (
        f"declared band [{band.min if band.min is not None else '-'}, "
        f"{band.max if band.max is not None else '-'}]"
        if band.min is not None or band.max is not None
        else "no declared band"
    )
    return GuardResult(
        name="size",
        passed=not failures,
        blocking=not campaign.dry_run,
        description=("; ".join(failures) if failures else f"audience {audience} inside its bands")
        + f" ({declared}; {history_text})",
        metadata={
            "audience": audience,
            "run_recipients": int(recipients),
            "earlier_released_today": earlier_today,
            "declared_min": band.min if band.min is not None else "none",
            "declared_max": band.max if band.max is not None else "none",
            "history_days": len(past),
            "history_min_days": d.history_min_days,
            "history_factor": d.history_factor,
            "history_median": _number(median, 1) if median is not None else "n/a",
            "history_low": _number(low, 1) if low is not None else "n/a",
            "history_high": _number(high, 1) if high is not None else "n/a",
            "history_band_applied": applied,
        },
        details={"history": {str(k): int(v) for k, v in past.items()}},
    )


# --- composition --------------------------------------------------------------------------------


def composition_verdict(
    campaign: Campaign, table: pd.DataFrame, defaults: GuardDefaults | None = None
) -> GuardResult:
    """The audience's share per region and tenure band against the eligible population's."""
    d = (defaults or GuardDefaults()).for_campaign(campaign)
    rows = table[table["dimension"].isin(BASE_DIMENSIONS)]
    selected = int(rows.loc[rows["dimension"] == BASE_DIMENSIONS[0], "selected"].sum())
    eligible = int(rows.loc[rows["dimension"] == BASE_DIMENSIONS[0], "eligible"].sum())
    tvd = {
        str(dim): _number(0.5 * float(group["share_diff"].abs().sum()))
        for dim, group in rows.groupby("dimension")
    }
    common = {
        "audience": selected,
        "eligible": eligible,
        "max_share_diff_allowed": d.max_share_diff,
        "min_audience": d.min_audience,
        "total_variation": json.dumps(tvd),
    }
    evidence = rows[["dimension", "segment", "eligible_share", "audience_share", "share_diff"]]
    records = [
        {k: (_number(v) if isinstance(v, float) else v) for k, v in r.items()}
        for r in evidence.to_dict("records")
    ]
    columns = ["dimension", "segment", "eligible_share", "audience_share", "share_diff"]
    if selected < d.min_audience or rows.empty:
        return GuardResult(
            "composition",
            True,
            not campaign.dry_run,
            f"audience of {selected} is below {d.min_audience}: too small to judge its composition",
            {**common, "worst_share_diff": "n/a"},
            rows=records,
            columns=columns,
        )
    worst = rows.loc[rows["share_diff"].abs().idxmax()]
    diff = float(worst["share_diff"])
    passed = abs(diff) <= d.max_share_diff
    what = (
        f"{worst['dimension']} {worst['segment']}: {worst['audience_share']:.0%} of the audience "
        f"vs {worst['eligible_share']:.0%} of the eligible ({diff:+.2f})"
    )
    return GuardResult(
        "composition",
        passed,
        not campaign.dry_run,
        ("largest deviation " if passed else "misrouted? ")
        + what
        + f", allowed +/-{d.max_share_diff:g}",
        {
            **common,
            "worst_share_diff": _number(diff),
            "worst_segment": f"{worst['dimension']}={worst['segment']}",
        },
        rows=records,
        columns=columns,
    )


# --- fairness -----------------------------------------------------------------------------------


def selection_rate_ratios(table: pd.DataFrame, min_segment_size: int) -> dict[str, dict]:
    """Per dimension: the four-fifths ratio (lowest / highest selection rate over the segments
    with at least ``min_segment_size`` eligible; None with fewer than two such segments or
    nobody selected), with the lowest and highest segments."""
    out: dict[str, dict] = {}
    for dimension, group in table.groupby("dimension", sort=False):
        counted = group[group["eligible"] >= min_segment_size]
        entry: dict[str, Any] = {
            "segments": len(group),
            "segments_counted": len(counted),
            "ratio": None,
            "lowest": None,
            "highest": None,
        }
        if len(counted) >= 2 and counted["selection_rate"].max() > 0:
            lo = counted.loc[counted["selection_rate"].idxmin()]
            hi = counted.loc[counted["selection_rate"].idxmax()]
            entry.update(
                ratio=_number(float(lo["selection_rate"]) / float(hi["selection_rate"])),
                lowest=f"{lo['segment']} ({lo['selection_rate']:.3f})",
                highest=f"{hi['segment']} ({hi['selection_rate']:.3f})",
            )
        out[str(dimension)] = entry
    return out


def fairness_verdict(
    campaign: Campaign,
    table: pd.DataFrame,
    unknown_columns: list[str] | None = None,
    defaults: GuardDefaults | None = None,
) -> GuardResult:
    """The bias audit: selection rates by segment and the four-fifths ratio per dimension."""
    d = (defaults or GuardDefaults()).for_campaign(campaign)
    policy = campaign.fairness
    ratios = selection_rate_ratios(table, d.min_segment_size)
    measured = {k: v["ratio"] for k, v in ratios.items() if v["ratio"] is not None}
    low = {k: r for k, r in measured.items() if r < policy.min_ratio}
    unknown = list(unknown_columns or [])
    failures = [
        f"{k} {r:.2f} ({ratios[k]['lowest']} vs {ratios[k]['highest']})" for k, r in low.items()
    ]
    if unknown:
        failures.append(f"sensitive column(s) {', '.join(unknown)} not in dim_customers")
    overall = min(measured.values()) if measured else None
    ratio_text = ", ".join(f"{k} {r:.2f}" for k, r in measured.items()) or "no ratio measurable"
    records = [
        {
            "dimension": r["dimension"],
            "segment": r["segment"],
            "eligible": int(r["eligible"]),
            "selected": int(r["selected"]),
            "selection_rate": _number(float(r["selection_rate"])),
            "counted": bool(r["eligible"] >= d.min_segment_size),
        }
        for r in table.to_dict("records")
    ]
    return GuardResult(
        "fairness",
        not failures,
        policy.mode == "block" and not campaign.dry_run,
        (
            f"four-fifths ratio below {policy.min_ratio:g}: " + "; ".join(failures)
            if failures
            else f"selection-rate ratios {ratio_text} (>= {policy.min_ratio:g})"
        )
        + f" [mode {policy.mode}; segments under {d.min_segment_size} eligible left out]",
        {
            "mode": policy.mode,
            "min_ratio": policy.min_ratio,
            "min_segment_size": d.min_segment_size,
            "four_fifths_ratio": overall if overall is not None else "n/a",
            **{
                f"ratio_{k}": (v if v is not None else "n/a")
                for k, v in ((k, e["ratio"]) for k, e in ratios.items())
            },
            "sensitive_columns": ", ".join(policy.sensitive_columns) or "none",
        },
        {"ratios": ratios, "unknown_columns": unknown},
        rows=records,
        columns=["dimension", "segment", "eligible", "selected", "selection_rate", "counted"],
    )


# --- one campaign, end to end -------------------------------------------------------------------


@dataclass(frozen=True)
class AudienceGuards:
    size: GuardResult
    composition: GuardResult
    fairness: GuardResult
    segments: pd.DataFrame  # segment_table rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size.as_dict(),
            "composition": self.composition.as_dict(),
            "fairness": self.fairness.as_dict(),
            "segments": [
                {k: (_number(v) if isinstance(v, float) else v) for k, v in r.items()}
                for r in self.segments.to_dict("records")
            ],
        }


def not_evaluated(campaign: Campaign | None, name: str) -> AudienceGuards:
    """The verdicts of a campaign the run did not decide (disabled, model or file unavailable):
    it sends nothing, so nothing to guard."""
    text = f"{name} was not evaluated in this run (disabled, or its model/file is unavailable)"
    blocking = bool(campaign and not campaign.dry_run)
    result = GuardResult("", True, blocking, text, {"evaluated": False})
    return AudienceGuards(
        replace(result, name="size"),
        replace(result, name="composition"),
        replace(result, name="fairness"),
        segment_table(pd.DataFrame(columns=["eligible", "selected"]), ()),
    )


def evaluate_audience(
    campaign: Campaign,
    rows: pd.DataFrame,
    customers: pd.DataFrame,
    decided_at: datetime,
    send_date: str,
    history: pd.DataFrame,
    defaults: GuardDefaults | None = None,
    sensitive_attributes: tuple[str, ...] = (),
) -> AudienceGuards:
    """All three verdicts of one campaign's decisions ``rows`` in a run. ``sensitive_attributes``:
    the declared sensitive attributes (columns of ``customers``), audited in every campaign."""
    sensitive = list(dict.fromkeys([*campaign.fairness.sensitive_columns, *sensitive_attributes]))
    unknown = [c for c in sensitive if c not in customers.columns]
    segments = segment_frame(rows, customers, decided_at, sensitive)
    dimensions = (*BASE_DIMENSIONS, *[c for c in sensitive if c not in unknown])
    table = segment_table(segments, tuple(dict.fromkeys(dimensions)))
    recipients = int(rows["decision"].isin(RECIPIENT_DECISIONS).sum())
    return AudienceGuards(
        size=size_verdict(campaign, recipients, send_date, history, defaults),
        composition=composition_verdict(campaign, table, defaults),
        fairness=fairness_verdict(campaign, table, unknown, defaults),
        segments=table,
    )


# --- the per-run report (notebook 04 reads it) ------------------------------------------------


def report_path(reports_dir: Path, run_id: str) -> Path:
    return Path(reports_dir) / REPORT_DIR / f"run={run_id}.json"


def write_guard_report(
    reports_dir: Path,
    run_id: str,
    decided_at: datetime,
    send_date: str,
    guards: dict[str, AudienceGuards],
) -> Path:
    """``<reports>/audience_guards/run=<run_id>.json``: each campaign's verdicts and segments."""
    path = report_path(reports_dir, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {
        "run_id": run_id,
        "decided_at": pd.Timestamp(decided_at).isoformat(),
        "send_date": send_date,
        "campaigns": {name: g.as_dict() for name, g in sorted(guards.items())},
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(body, indent=1, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def load_guard_report(reports_dir: Path, run_id: str | None = None) -> dict[str, Any] | None:
    """A run's guard report (``run_id``), else the newest one; None when there is none."""
    folder = Path(reports_dir) / REPORT_DIR
    if run_id:
        path = report_path(reports_dir, run_id)
        if path.exists():
            return json.loads(path.read_text(encoding="utf-8"))
    files = sorted(folder.glob("run=*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(files[-1].read_text(encoding="utf-8")) if files else None


def selection_rates(report: dict[str, Any] | None) -> pd.DataFrame:
    """The report's segments as one frame: campaign, dimension, segment, eligible, selected,
    shares, selection_rate, whether the segment counts in the ratio (``counted``: large enough)
    and the dimension's four-fifths ratio with the campaign's policy (min_ratio, mode)."""
    columns = ["campaign", "dimension", "segment", "eligible", "selected", "eligible_share"]
    columns += ["audience_share", "share_diff", "selection_rate", "counted", "ratio"]
    columns += ["min_ratio", "mode"]
    frames = []
    for name, guards in (report or {}).get("campaigns", {}).items():
        segments = pd.DataFrame(guards.get("segments", []))
        if segments.empty:
            continue
        fairness = guards.get("fairness", {})
        ratios = fairness.get("ratios", {})
        segments.insert(0, "campaign", name)
        segments["ratio"] = segments["dimension"].map(
            lambda d, r=ratios: (r.get(d) or {}).get("ratio")
        )
        smallest = fairness.get("min_segment_size", FAIRNESS_MIN_SEGMENT_SIZE)
        segments["counted"] = segments["eligible"] >= smallest
        segments["min_ratio"] = fairness.get("min_ratio")
        segments["mode"] = fairness.get("mode")
        frames.append(segments)
    return (
        pd.concat(frames, ignore_index=True)[columns] if frames else pd.DataFrame(columns=columns)
    )
