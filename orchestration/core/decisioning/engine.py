"""The policy engine: scores -> one decision with a coded reason for every candidate of every
active campaign.

Vectorised with numpy over the candidate arrays (no Python loop per customer): 10M candidates x
3 campaigns evaluate in seconds. The rules, in the order their reasons take precedence:

 1. global control group (salted hash)                  -> control  / global_control
 2. data the rules cannot use (a time zone zoneinfo does
    not know, or none): quarantined, never contacted    -> excluded / invalid_customer_data
 3. consent on the campaign's channel at decision time  -> excluded / no_consent_on_channel
 4. suppression (global or channel)                     -> excluded / suppressed
 5. no verified contact point on the channel             -> excluded / no_verified_contact_point
 6. campaign eligibility filters                         -> excluded / not_eligible
 7. no score (missing features or model)                -> excluded / missing_score
 8. frequency caps over rolling windows (ledger + today) -> excluded / frequency_cap
 9. messages per customer per day already reached        -> excluded / daily_message_limit
10. not worth sending (net value <= 0, uplift <= floor)  -> excluded / not_worth_sending
11. arbitration: each customer goes to the open campaign with the highest expected net value
    (uplift x value per conversion - cost per send; ties: priority, then name); a campaign takes
    its proposers by value up to its send cap (max sends / budget, minus today's sends), keeping
    its holdout share (salted hash) out of the sends; customers over one campaign's cap fall to
    their next campaign                                  -> send / selected_top_uplift,
                                                            holdout / campaign_holdout,
                                                            excluded / won_by_other_campaign,
                                                            excluded / outside_send_cap
12. quiet hours in the customer's local time: a selected send outside the channel's allowed
    window [start, end) is deferred to the next time it opens, not dropped; a window with
    start > end runs past midnight (22:00-06:00)        -> deferred / quiet_hours

A campaign with ``variants:`` first picks, per customer, the variant with the highest expected
net value among those whose channel is open (rules 3-5 and 8 on the variant's channel;
``variants.py``); every rule above then applies to that variant (its channel, its uplift, its
value), so holdout and global control are the same customers as for a one-message campaign. The
decision records the variant, its template and the runner-up's value.

One customer's bad row never stops the others: an unknown time zone excludes that customer
(rule 2) instead of raising for every campaign.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from orchestration.core.common.hashing import in_share
from orchestration.core.decisioning.campaigns import Campaign
from orchestration.core.decisioning.policy import Policy, VersionedPolicy
from orchestration.core.decisioning.variants import VariantChoice, choose_variants
from orchestration.core.observability.tracing import trace_id_for_run

# to_frame's default: the trace id derived from the run id
RUN_TRACE = "from-run-id"

# Decisions (codes are positions in this tuple)
DECISIONS = ("send", "deferred", "holdout", "control", "excluded")
SEND, DEFERRED, HOLDOUT, CONTROL, EXCLUDED = range(len(DECISIONS))

# Reasons (0 means "still open" during evaluation)
REASONS = (
    "",
    "selected_top_uplift",
    "quiet_hours",
    "campaign_holdout",
    "global_control",
    "no_consent_on_channel",
    "suppressed",
    "no_verified_contact_point",
    "not_eligible",
    "missing_score",
    "frequency_cap",
    "daily_message_limit",
    "not_worth_sending",
    "won_by_other_campaign",
    "outside_send_cap",
    "invalid_customer_data",  # appended: the codes of the reasons above do not change
)
R = {name: code for code, name in enumerate(REASONS)}

REASON_TEXT = {
    "selected_top_uplift": "selected: among the highest expected net value for this campaign",
    "quiet_hours": "selected, but deferred to the next allowed local send time (quiet hours)",
    "campaign_holdout": "kept out as the campaign's random measurement holdout",
    "global_control": "in the global control group, which no campaign ever contacts",
    "no_consent_on_channel": "not opted in on the campaign's channel at the decision time",
    "suppressed": "on a suppression list (global or for this channel)",
    "no_verified_contact_point": "no verified contact point on the channel",
    "not_eligible": "outside the campaign's eligibility filters",
    "missing_score": "no score (features or model unavailable)",
    "frequency_cap": "a frequency cap is reached (messages in the rolling window)",
    "daily_message_limit": "already messaged today (messages per customer per day)",
    "not_worth_sending": "expected net value not positive (uplift x value - cost, or uplift below the floor)",
    "won_by_other_campaign": "another campaign had a higher expected net value for this customer",
    "outside_send_cap": "ranked below the campaign's send cap (max sends or budget)",
    "invalid_customer_data": (
        "quarantined: the customer's data cannot be used (e.g. an unknown time zone); fix the "
        "raw customers row"
    ),
}

CANDIDATE_COLUMNS = ("customer_id", "region", "time_zone", "signed_up_at")


@dataclass(frozen=True)
class CampaignScores:
    """Scores aligned with the candidate rows (NaN: no score)."""

    uplift: np.ndarray
    model_version: np.ndarray  # object array of version strings per row
    scored_by: np.ndarray  # object array: "champion" / "challenger"
    # a multi-arm model's uplift per variant (arm name), for a campaign with variants
    arms: dict[str, np.ndarray] | None = None


@dataclass(frozen=True)
class PolicyInputs:
    candidates: pd.DataFrame  # CANDIDATE_COLUMNS + is_<ch>_opted_in/_suppressed/_reachable
    scores: dict[str, CampaignScores]  # by campaign name
    contact_history: pd.DataFrame  # ledger rows: campaign, customer_id, channel, send_date
    decided_at: datetime


@dataclass
class CampaignDecisions:
    campaign: Campaign
    decision: np.ndarray  # int8 codes into DECISIONS
    reason: np.ndarray  # int8 codes into REASONS
    net_value: np.ndarray
    rank: (
        np.ndarray
    )  # position in the campaign's accepted list by value (1-based); NaN if not accepted
    deferred_until: np.ndarray  # datetime64[us] UTC, NaT when not deferred
    # a campaign with variants: the chosen variant per row (variants.py); None otherwise
    choice: VariantChoice | None = None

    def channels(self) -> np.ndarray:
        """The channel per row: the chosen variant's, or the campaign's."""
        if self.choice is not None:
            return self.choice.channel
        return np.full(len(self.decision), self.campaign.channel, dtype=object)


@dataclass
class PolicyDecisions:
    customer_ids: np.ndarray
    decided_at: datetime
    policy_version: str
    campaigns: list[CampaignDecisions] = field(default_factory=list)
    scores: dict[str, CampaignScores] = field(default_factory=dict)

    def counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = {}
        for c in self.campaigns:
            row: dict[str, int] = {}
            for code, n in zip(*np.unique(c.decision, return_counts=True), strict=True):
                row[f"decision_{DECISIONS[code]}"] = int(n)
            for code, n in zip(*np.unique(c.reason, return_counts=True), strict=True):
                row[f"reason_{REASONS[code]}"] = int(n)
            out[c.campaign.name] = row
        return out

    def to_frame(
        self,
        run_id: str,
        feature_timestamp: datetime | None,
        dry_run: bool = False,
        trace_id: str | None = RUN_TRACE,
    ) -> pd.DataFrame:
        """The decisions in the batch schema. ``trace_id``: by default the run's trace
        (core/observability/tracing.py); the API sets each request's own afterwards."""
        frames = []
        if trace_id == RUN_TRACE:
            trace_id = trace_id_for_run(run_id)
        for c in self.campaigns:
            s = self.scores.get(c.campaign.name)
            n = len(self.customer_ids)
            frames.append(
                pd.DataFrame(
                    {
                        "run_id": run_id,
                        "trace_id": trace_id,
                        "campaign": c.campaign.name,
                        "channel": c.channels(),
                        "customer_id": self.customer_ids,
                        "decision": pd.Categorical.from_codes(c.decision, DECISIONS),
                        "reason": pd.Categorical.from_codes(c.reason, REASONS),
                        "predicted_uplift": _predicted_uplift(c, s, n),
                        "expected_net_value": c.net_value,
                        "value_rank": c.rank,
                        "model_version": s.model_version if s is not None else np.full(n, None),
                        "scored_by": s.scored_by if s is not None else np.full(n, None),
                        "policy_version": self.policy_version,
                        "feature_timestamp": pd.Timestamp(feature_timestamp)
                        if feature_timestamp
                        else pd.NaT,
                        "decided_at": pd.Timestamp(self.decided_at),
                        "deferred_until": pd.to_datetime(c.deferred_until, utc=True),
                        "dry_run": dry_run or c.campaign.dry_run,
                        **variant_columns(c, n),
                    }
                )
            )
        if not frames:
            return pd.DataFrame()
        frame = pd.concat(frames, ignore_index=True)
        for column in ("decision", "reason"):
            frame[column] = frame[column].astype(str)
        return frame


def _predicted_uplift(c: CampaignDecisions, s: CampaignScores | None, n: int) -> np.ndarray:
    if c.choice is not None:
        return c.choice.uplift
    return s.uplift if s is not None else np.full(n, np.nan)


def variant_columns(c: CampaignDecisions, n: int) -> dict[str, np.ndarray]:
    """The decision's variant columns: the chosen variant, its template and the runner-up's
    expected net value (None / NaN for a campaign without variants)."""
    if c.choice is None:
        return {
            "variant": np.full(n, None, dtype=object),
            "template": np.full(n, None, dtype=object),
            "runner_up_value": np.full(n, np.nan),
        }
    return {
        "variant": c.choice.name,
        "template": c.choice.template,
        "runner_up_value": c.choice.runner_up_value,
    }


# --- rule helpers ---------------------------------------------------------------------------


def _day(ts: datetime) -> np.datetime64:
    return np.datetime64(
        pd.Timestamp(ts).tz_convert("UTC").normalize().tz_localize(None).to_datetime64(), "D"
    )


@dataclass(frozen=True)
class ContactHistory:
    """Ledger rows reduced to arrays: candidate position, days before today, channel."""

    position: np.ndarray  # index into the candidate arrays
    days_ago: np.ndarray  # 0 = today
    channel: np.ndarray  # object array

    @classmethod
    def prepare(
        cls, history: pd.DataFrame, customer_ids: np.ndarray, decided_at: datetime
    ) -> ContactHistory:
        if history.empty or len(customer_ids) == 0:
            empty = np.array([], dtype=np.int64)
            return cls(empty, empty, np.array([], dtype=object))
        days = pd.to_datetime(history["send_date"]).to_numpy().astype("datetime64[D]")
        days_ago = (_day(decided_at) - days).astype(np.int64)
        ids = history["customer_id"].to_numpy(dtype=np.int64)
        # sorted needles make the binary searches cache-friendly (3x faster at 10M candidates)
        by_id = np.argsort(ids, kind="stable")
        pos = np.empty(len(ids), dtype=np.int64)
        pos[by_id] = np.searchsorted(customer_ids, ids[by_id])
        known = (pos < len(customer_ids)) & (
            customer_ids[np.minimum(pos, len(customer_ids) - 1)] == ids
        )
        keep = known & (days_ago >= 0)
        return cls(pos[keep], days_ago[keep], history["channel"].to_numpy()[keep])

    def counts(self, n: int, window_days: int, channel: str | None) -> np.ndarray:
        """Messages per candidate in the last ``window_days`` days (today included)."""
        mask = self.days_ago < window_days
        if channel is not None:
            mask &= self.channel == channel
        return np.bincount(self.position[mask], minlength=n).astype(np.int64)


def _capped(policy: Policy, history: ContactHistory, n: int, channel: str) -> np.ndarray:
    blocked = np.zeros(n, dtype=bool)
    for cap in policy.frequency_caps:
        if cap.scope not in ("all", channel):
            continue
        scope = None if cap.scope == "all" else cap.scope
        blocked |= history.counts(n, cap.window_days, scope) >= cap.max_messages
    return blocked


def _eligible(candidates: pd.DataFrame, campaign: Campaign, decided_at: datetime) -> np.ndarray:
    ok = np.ones(len(candidates), dtype=bool)
    rules = campaign.eligibility
    if rules.regions is not None:
        ok &= candidates["region"].isin(rules.regions).to_numpy()
    if rules.min_tenure_days is not None:
        ok &= _tenure_days(candidates["signed_up_at"], decided_at) >= rules.min_tenure_days
    return ok


_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_NS_PER_DAY = 86_400 * 1_000_000_000


def _tenure_days(signed_up: pd.Series, decided_at: datetime) -> np.ndarray:
    """``(decided_at - signed_up).dt.days`` (whole days, floored) as floats, NaN for no sign-up
    time: on the int64 epoch values, without a Series of Timedeltas (a real-time decision's
    largest single cost in the engine)."""
    if not isinstance(signed_up.dtype, pd.DatetimeTZDtype):
        signed_up = pd.to_datetime(signed_up, utc=True)
    values = signed_up.array
    unit = values.unit
    epoch = values.asi8
    # the decision time floored to the column's unit: the same whole days (a day is a whole
    # number of units, and so is every sign-up time)
    now = pd.Timestamp(decided_at).value // _NS_PER_UNIT[unit]
    days = np.floor_divide(now - epoch, _NS_PER_DAY // _NS_PER_UNIT[unit]).astype(np.float64)
    days[values.isna()] = np.nan
    return days


def net_value(campaign: Campaign, uplift: np.ndarray) -> np.ndarray:
    """Expected net value of one message; without a conversion value, the uplift itself."""
    if campaign.budget.value_per_conversion > 0:
        return uplift * campaign.budget.value_per_conversion - campaign.budget.cost_per_send
    return uplift.astype(np.float64, copy=True)


@dataclass(frozen=True)
class LocalZones:
    """The candidates' time zones, resolved once: a code per candidate into ``zones``, whose
    entry is None for a name zoneinfo does not know (and code -1 for no time zone at all)."""

    codes: np.ndarray
    zones: list[ZoneInfo | None]

    @classmethod
    def resolve(cls, time_zones: pd.Series) -> LocalZones:
        codes, names = pd.factorize(time_zones, sort=True)
        return cls(np.asarray(codes), [_zone(name) for name in names])

    @property
    def invalid(self) -> np.ndarray:
        """Per candidate: no time zone, or one zoneinfo cannot load."""
        unknown = np.array([zone is None for zone in self.zones] + [True], dtype=bool)
        return unknown[self.codes]  # code -1 (missing) picks the trailing True


def _zone(name: object) -> ZoneInfo | None:
    try:
        return ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):  # ValueError: not a zone key (e.g. "../x")
        return None


def in_window(start: time, end: time, local: time) -> bool:
    """Whether a local time is inside the allowed window [start, end); start > end: the window
    runs past midnight (22:00-06:00 allows 23:00 and 05:00, not 12:00)."""
    if start < end:
        return start <= local < end
    return local >= start or local < end


def quiet_hours_deferral(
    time_zones: pd.Series,
    decided_at: datetime,
    policy: Policy,
    channel: str,
    zones: LocalZones | None = None,
) -> np.ndarray:
    """Per candidate: NaT if a message may go now, else the UTC time the window next opens.

    Candidates whose time zone is unknown get NaT too: rule 2 has excluded them already."""
    out = np.full(len(time_zones), np.datetime64("NaT"), dtype="datetime64[us]")
    window = policy.quiet_hours.get(channel)
    if window is None:
        return out
    start, end = window.bounds()
    zones = zones if zones is not None else LocalZones.resolve(time_zones)
    now = pd.Timestamp(decided_at).tz_convert("UTC").to_pydatetime()
    for code, zone in enumerate(zones.zones):
        if zone is None:
            continue
        local = now.astimezone(zone)
        if in_window(start, end, local.time()):
            continue
        # the next start: today if it is still ahead, else tomorrow
        opens = local.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
        if local.time() >= start:
            opens += timedelta(days=1)
        out[zones.codes == code] = np.datetime64(opens.astimezone(UTC).replace(tzinfo=None), "us")
    return out


# --- evaluation -----------------------------------------------------------------------------


def evaluate(
    inputs: PolicyInputs,
    campaigns: list[Campaign],
    versioned: VersionedPolicy,
    sent_today: dict[str, int] | None = None,
) -> PolicyDecisions:
    """Decisions for every (campaign, candidate); ``campaigns`` compete with each other.

    ``sent_today``: messages each campaign already has in the ledger today (counts against its
    cap). Candidates must be sorted by customer_id and unique.
    """
    policy = versioned.policy
    candidates = inputs.candidates
    ids = candidates["customer_id"].to_numpy(dtype=np.int64)
    if len(ids) > 1 and not (np.diff(ids) > 0).all():
        raise ValueError("candidates must be sorted by customer_id and unique")
    names = [c.name for c in campaigns]
    if len(set(names)) != len(names):
        raise ValueError(f"campaign names must be unique, got {names}")
    missing = [n for n in names if n not in inputs.scores]
    if missing:
        raise ValueError(f"no scores for campaigns {missing}")
    sent_today = sent_today or {}
    n, k = len(ids), len(campaigns)
    decided_at = inputs.decided_at

    control = in_share(ids, policy.global_control.share, policy.global_control.salt)
    zones = LocalZones.resolve(candidates["time_zone"])
    invalid = zones.invalid
    history = ContactHistory.prepare(inputs.contact_history, ids, decided_at)
    over_daily = history.counts(n, 1, None) >= policy.max_messages_per_customer_per_day

    blocks = ChannelBlocks(candidates, policy, history)
    results: list[CampaignDecisions] = []
    values = np.full((k, n), -np.inf)
    for i, campaign in enumerate(campaigns):
        scores = inputs.scores[campaign.name]
        reason = np.zeros(n, dtype=np.int8)
        choice = _variant_choice(campaign, scores, blocks)
        channel = choice.channel if choice is not None else campaign.channel
        uplift = choice.uplift if choice is not None else scores.uplift

        def mark(mask: np.ndarray, code: int, reason: np.ndarray = reason) -> None:
            reason[(reason == 0) & mask] = code

        mark(control, R["global_control"])
        mark(invalid, R["invalid_customer_data"])
        mark(blocks.rows(channel, "no_consent_on_channel"), R["no_consent_on_channel"])
        mark(blocks.rows(channel, "suppressed"), R["suppressed"])
        mark(blocks.rows(channel, "no_verified_contact_point"), R["no_verified_contact_point"])
        mark(~_eligible(candidates, campaign, decided_at), R["not_eligible"])
        mark(np.isnan(uplift), R["missing_score"])
        mark(blocks.rows(channel, "frequency_cap"), R["frequency_cap"])
        mark(over_daily, R["daily_message_limit"])
        value = choice.value if choice is not None else net_value(campaign, uplift)
        with np.errstate(invalid="ignore"):
            not_worth = (value <= 0) | (uplift <= campaign.min_predicted_uplift)
        mark(not_worth, R["not_worth_sending"])
        open_ = reason == 0
        values[i, open_] = value[open_]
        results.append(
            CampaignDecisions(
                campaign=campaign,
                decision=np.full(n, EXCLUDED, dtype=np.int8),
                reason=reason,
                net_value=np.where(np.isnan(uplift), np.nan, value),
                rank=np.full(n, np.nan),
                deferred_until=np.full(n, np.datetime64("NaT"), dtype="datetime64[us]"),
                choice=choice,
            )
        )

    _arbitrate(results, values, ids, sent_today)

    deferrals: dict[str, np.ndarray] = {}

    def deferral_on(channel: str) -> np.ndarray:
        if channel not in deferrals:
            deferrals[channel] = quiet_hours_deferral(
                candidates["time_zone"], decided_at, policy, channel, zones
            )
        return deferrals[channel]

    for result in results:
        if result.choice is None:
            deferral = deferral_on(result.campaign.channel)
        else:
            deferral = np.full(n, np.datetime64("NaT"), dtype="datetime64[us]")
            for channel in result.campaign.channels:
                on = result.choice.channel == channel
                deferral[on] = deferral_on(channel)[on]
        result.decision[result.reason == R["global_control"]] = CONTROL
        selected = result.reason == R["selected_top_uplift"]
        deferred = selected & ~np.isnat(deferral)
        result.decision[selected] = SEND
        result.decision[deferred] = DEFERRED
        result.reason[deferred] = R["quiet_hours"]
        result.deferred_until[deferred] = deferral[deferred]
        result.decision[result.reason == R["campaign_holdout"]] = HOLDOUT

    return PolicyDecisions(
        customer_ids=ids,
        decided_at=decided_at,
        policy_version=versioned.version,
        campaigns=results,
        scores=dict(inputs.scores),
    )


class ChannelBlocks:
    """Per channel, which candidates a message may not reach (the channel rules 3-5 and 8),
    computed once per channel; ``rows`` selects by a per-row channel for variant campaigns."""

    RULES = ("no_consent_on_channel", "suppressed", "no_verified_contact_point", "frequency_cap")

    def __init__(self, candidates: pd.DataFrame, policy: Policy, history: ContactHistory):
        self.candidates, self.policy, self.history = candidates, policy, history
        self._cache: dict[str, dict[str, np.ndarray]] = {}

    def on(self, channel: str) -> dict[str, np.ndarray]:
        if channel not in self._cache:
            c, n = self.candidates, len(self.candidates)
            self._cache[channel] = {
                "no_consent_on_channel": ~c[f"is_{channel}_opted_in"].to_numpy(dtype=bool),
                "suppressed": c[f"is_{channel}_suppressed"].to_numpy(dtype=bool),
                "no_verified_contact_point": ~c[f"is_{channel}_reachable"].to_numpy(dtype=bool),
                "frequency_cap": _capped(self.policy, self.history, n, channel),
            }
        return self._cache[channel]

    def open_on(self, channel: str) -> np.ndarray:
        blocked = self.on(channel)
        return ~np.logical_or.reduce([blocked[rule] for rule in self.RULES])

    def rows(self, channel: str | np.ndarray, rule: str) -> np.ndarray:
        if isinstance(channel, str):
            return self.on(channel)[rule]
        out = np.zeros(len(channel), dtype=bool)
        for name in pd.unique(channel):
            here = channel == name
            out[here] = self.on(str(name))[rule][here]
        return out


def _variant_choice(
    campaign: Campaign, scores: CampaignScores, blocks: ChannelBlocks
) -> VariantChoice | None:
    if not campaign.variants:
        return None
    if scores.arms is None:
        raise ValueError(f"campaign {campaign.name} has variants but no per-arm scores")
    return choose_variants(campaign, scores.arms, ~np.isnan(scores.uplift), blocks.open_on)


def _top_by_value(proposers: np.ndarray, value: np.ndarray, needed: int) -> np.ndarray:
    """``proposers`` ordered by value desc (ties: position, i.e. customer id), at least the
    first ``needed`` of them; the rest follow in any order (no full sort of millions)."""
    if needed >= len(proposers):
        return proposers[np.argsort(-value, kind="stable")]
    head = np.argpartition(-value, needed)[: needed + 1]
    threshold = value[head].min()
    head = np.flatnonzero(value >= threshold)  # every tie at the threshold, in id order
    head = head[np.argsort(-value[head], kind="stable")]
    rest = np.setdiff1d(np.arange(len(proposers)), head, assume_unique=True)
    return proposers[np.concatenate([head, rest])]


def _arbitrate(
    results: list[CampaignDecisions],
    values: np.ndarray,
    ids: np.ndarray,
    sent_today: dict[str, int],
) -> None:
    """Assign each open customer to at most one campaign (see rule 10 of the module doc)."""
    k, n = values.shape
    if k == 0 or n == 0:
        return
    contested = np.flatnonzero(np.isfinite(values).any(axis=0))
    # Preference order per open customer: value desc, then priority desc, then name asc.
    # Campaigns are put in tie-break order first, so a stable sort on value keeps the tie-break.
    tie_order = np.array(
        sorted(range(k), key=lambda c: (-results[c].campaign.priority, results[c].campaign.name))
    )
    sub = values[np.ix_(tie_order, contested)].T  # (m, k)
    order = tie_order[np.argsort(-sub, axis=1, kind="stable")].T  # (k, m): j-th choice per customer
    remaining = np.array(
        [max(r.campaign.send_cap - sent_today.get(r.campaign.name, 0), 0) for r in results],
        dtype=np.int64,
    )
    holdout_share = [r.campaign.holdout_share for r in results]
    assigned = np.full(len(contested), -1, dtype=np.int64)
    position = np.zeros(len(contested), dtype=np.int64)
    accepted_so_far = np.zeros(k, dtype=np.int64)
    for _ in range(k):
        waiting = np.flatnonzero((assigned == -1) & (position < k))
        if len(waiting) == 0:
            break
        choice = order[position[waiting], waiting]
        is_open = np.isfinite(values[choice, contested[waiting]])
        position[waiting[~is_open]] = k  # no open campaign left for them
        waiting, choice = waiting[is_open], choice[is_open]
        for c in range(k):
            local = waiting[choice == c]  # positions in `contested`, ascending customer id
            if len(local) == 0:
                continue
            h = holdout_share[c]
            needed = int(np.ceil(remaining[c] / (1 - h) * 1.05)) + 64 if remaining[c] else 0
            local = _top_by_value(local, values[c, contested[local]], needed)
            rows = contested[local]
            held = (
                in_share(ids[rows], h, f"holdout:{results[c].campaign.name}")
                if h > 0
                else np.zeros(len(rows), bool)
            )
            send_positions = np.flatnonzero(~held)
            if remaining[c] == 0:
                cutoff = -1
            elif len(send_positions) > remaining[c]:
                cutoff = int(send_positions[remaining[c] - 1])
            else:
                cutoff = len(rows) - 1
            accepted, rejected = rows[: cutoff + 1], rows[cutoff + 1 :]
            assigned[local[: cutoff + 1]] = c
            remaining[c] -= int((~held[: cutoff + 1]).sum())
            results[c].reason[accepted] = np.where(
                held[: cutoff + 1], R["campaign_holdout"], R["selected_top_uplift"]
            )
            results[c].rank[accepted] = accepted_so_far[c] + np.arange(1, len(accepted) + 1)
            accepted_so_far[c] += len(accepted)
            results[c].reason[rejected] = R["outside_send_cap"]
            position[local[cutoff + 1 :]] += 1
    winner = np.full(n, -1, dtype=np.int64)
    winner[contested] = assigned
    # Open candidates a campaign never took: someone else won them, or they were over its cap.
    for c, result in enumerate(results):
        untouched = (result.reason == 0) & np.isfinite(values[c])
        won_elsewhere = untouched & (winner >= 0) & (winner != c)
        result.reason[won_elsewhere] = R["won_by_other_campaign"]
        result.reason[untouched & ~won_elsewhere] = R["outside_send_cap"]
