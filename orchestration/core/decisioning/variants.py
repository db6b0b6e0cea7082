"""Variant decisions: per customer, the message variant with the highest expected net value.

A campaign with ``variants:`` offers several messages (a template and/or a channel each), every
one tested as a named arm of a past randomized experiment; the multi-arm model scores the uplift
of each arm against control (``core.model.arms``). For every candidate the policy engine
(``engine.evaluate``) asks :func:`choose_variants` which variant to consider:

* a variant is **open** for a customer when its channel allows the message: opted in, not
  suppressed, a verified contact point, no frequency cap reached on that channel;
* its expected net value is ``uplift(arm) x value_per_conversion - cost`` (the variant's own
  ``cost_per_send``, else the campaign's), or the uplift itself without a conversion value;
* the chosen variant is the open one with the highest value (ties: the first declared); the
  runner-up's value is recorded beside it (NaN when no second variant is open). When no variant
  is open the first-ranked one by value is kept, so the reason the engine records (no consent,
  suppressed, ...) is that variant's.

The engine then treats the chosen variant like a one-message campaign's message: the same
rules, holdout, global control, caps and arbitration between campaigns, by its value. Batch and
the decision API both call the engine, so they choose alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from orchestration.core.decisioning.campaigns import Campaign


@dataclass(frozen=True)
class VariantChoice:
    """Per candidate row: the chosen variant and what it brings."""

    name: np.ndarray  # object: the variant's name (its arm)
    template: np.ndarray  # object: the message template the gateway sends
    channel: np.ndarray  # object: the channel it goes out on
    uplift: np.ndarray  # its predicted uplift (NaN: no score)
    value: np.ndarray  # its expected net value
    runner_up_value: np.ndarray  # the next open variant's value; NaN when none


def variant_value(campaign: Campaign, uplift: np.ndarray, cost: float) -> np.ndarray:
    """``engine.net_value`` with the variant's cost per send."""
    if campaign.budget.value_per_conversion > 0:
        return uplift * campaign.budget.value_per_conversion - cost
    return uplift.astype(np.float64, copy=True)


def choose_variants(
    campaign: Campaign,
    arms: dict[str, np.ndarray],
    scored: np.ndarray,
    open_on: Callable[[str], np.ndarray],
) -> VariantChoice:
    """The variant per row (see the module doc). ``arms``: uplift per arm name; ``scored``:
    rows with a score at all (False rows get NaN uplift, so the engine marks them
    missing_score); ``open_on(channel)``: rows the channel allows a message to."""
    variants = campaign.variants or []
    n = len(scored)
    values = np.full((len(variants), n), -np.inf)
    opened = np.zeros((len(variants), n), dtype=bool)
    uplift = np.full((len(variants), n), np.nan)
    for i, v in enumerate(variants):
        u = np.where(scored, arms[v.name], np.nan)
        cost = campaign.budget.cost_per_send if v.cost_per_send is None else v.cost_per_send
        value = variant_value(campaign, u, cost)
        finite = np.isfinite(value)
        uplift[i] = u
        values[i, finite] = value[finite]
        opened[i] = open_on(campaign.variant_channel(v)) & finite
    open_values = np.where(opened, values, -np.inf)
    # first by value among the open ones; where none is open, first by value among all
    pick = np.where(opened.any(axis=0), np.argmax(open_values, axis=0), np.argmax(values, axis=0))
    rows = np.arange(n)
    second = np.sort(open_values, axis=0)[-2] if len(variants) > 1 else np.full(n, -np.inf)
    chosen_value = values[pick, rows]
    return VariantChoice(
        name=np.array([v.name for v in variants], dtype=object)[pick],
        template=np.array([campaign.variant_template(v) for v in variants], dtype=object)[pick],
        channel=np.array([campaign.variant_channel(v) for v in variants], dtype=object)[pick],
        uplift=uplift[pick, rows],
        value=np.where(np.isfinite(chosen_value), chosen_value, np.nan),
        runner_up_value=np.where(np.isfinite(second), second, np.nan),
    )
