"""Batch and real-time decisions for the same customers at the same moment agree.

The decision service (orchestration.core.decisioning.realtime) is loaded the way `campaign serve`
loads it: Feast's online store, the champion from MLflow, the policy, the campaigns, the ledger's
standing release and the raw customer data. It decides every customer of the first run at that
run's decision time, with the contact history the run saw (the ledger without the run's own
sends). The batch read offline features as of the decision time, the service reads the online
store: in this world both hold the same snapshot (asserted). The send cap is a batch-level top-k:
the service applies it through the release's cut-off (the lowest accepted expected net value).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey

pytestmark = pytest.mark.e2e

KEYS = ["campaign", "customer_id"]
SAME = [
    "decision",
    "reason",
    "model_version",
    "scored_by",
    "policy_version",
    "channel",
    "variant",
    "template",
]
MIN_AGREEMENT = 0.999
MAX_SCORE_DIFF = 1e-9


def _decisions_file(result) -> Path:
    for event in result.get_asset_materialization_events():
        if event.asset_key == AssetKey("campaign_decisions"):
            return Path(event.materialization.metadata["decisions_file"].value)
    raise AssertionError("campaign_decisions was not materialized")


def _history_the_batch_saw(s, decided_at, run_id: str, days: int):
    from orchestration.core.decisioning.inputs import recent_contacts
    from orchestration.core.delivery.ledger import SendLedger

    ledger = SendLedger(s.gateway_dir / "ledger.db")
    try:
        history = recent_contacts(ledger, decided_at, days, exclude_runs=[run_id])
    finally:
        ledger.close()
    today = history[history["send_date"] == decided_at.date().isoformat()]
    return history, {str(k): int(v) for k, v in today.groupby("campaign").size().items()}


def _over_http(s, service, batch: pd.DataFrame, tmp_path: Path) -> dict[str, list[dict]]:
    """A few decisions through the app (TestClient, a bearer token) on the loaded service."""
    import warnings

    with warnings.catch_warnings():  # Starlette asks for httpx2; the project declares httpx
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    from orchestration.api.app import create_app
    from orchestration.api.tokens import TokenStore

    tokens = TokenStore(tmp_path / "tokens.json")
    _, token = tokens.create(["decide"], "parity")
    app = create_app(s, service=service, tokens=tokens, refresh_seconds=3600)
    answers: dict[str, list[dict]] = {}
    with TestClient(app) as http:
        assert http.get("/v1/health").json()["released"] is True
        for reason in ("send", "outside_send_cap", "no_consent_on_channel"):
            column = "decision" if reason == "send" else "reason"
            ids = batch.loc[batch[column] == reason, "customer_id"].head(5)
            for c in ids:
                response = http.post(
                    "/v1/decisions",
                    json={
                        "request_id": f"{reason}-{c}",
                        "customer_id": int(c),
                        "campaign": batch["campaign"].iloc[0],
                    },
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert response.status_code == 200, response.text
                answers.setdefault(reason, []).append(response.json())
    return answers


def _same(a: pd.Series, b: pd.Series) -> np.ndarray:
    return ((a == b) | (a.isna() & b.isna())).to_numpy()


def test_the_api_decides_like_the_batch_at_the_batch_moment(world, tmp_path):
    from orchestration.core.decisioning.realtime import ApiDecisionStore, DecisionService

    s, first = world["settings"], world["first"]
    assert first.success
    batch = pd.read_parquet(_decisions_file(first))
    batch = batch[~batch["dry_run"]].copy()
    decided_at = pd.Timestamp(batch["decided_at"].iloc[0]).to_pydatetime()
    batch_snapshot = pd.Timestamp(batch["feature_timestamp"].iloc[0])

    service = DecisionService(s, store=ApiDecisionStore(tmp_path / "api.db"), refresh_seconds=3600)
    try:
        health = service.health()
        assert health["status"] == "ok", health
        assert health["release"]["run_id"] == first.run_id
        cutoffs = health["release"]["cutoffs"]
        policy = service.state.policy.policy
        history, sent_today = _history_the_batch_saw(
            s, decided_at, first.run_id, policy.longest_cap_window_days
        )
        customers = np.sort(batch["customer_id"].unique())
        evaluated = service.evaluate(
            customers, decided_at=decided_at, contact_history=history, sent_today=sent_today
        )
        # a few customers through the request path, one at a time
        sample = np.random.default_rng(0).choice(customers, 50, replace=False)
        alone = pd.concat(
            [
                service.evaluate(
                    [c],
                    decided_at=decided_at,
                    contact_history=history[history["customer_id"] == c],
                    sent_today=sent_today,
                ).rows
                for c in sample
            ],
            ignore_index=True,
        )
        answers = _over_http(s, service, batch, tmp_path)
    finally:
        service.close()

    # the same snapshot on both sides: online timestamps = the batch's feature timestamp
    stamps = pd.Series(evaluated.feature_timestamps)
    same_snapshot = float((stamps == batch_snapshot).mean())
    safe = pd.Series(evaluated.safe, dtype=object)

    online = evaluated.rows
    both = batch.merge(online, on=KEYS, how="left", suffixes=("_batch", "_api"), indicator=True)
    compared = both[both["_merge"] == "both"]
    agree = np.ones(len(compared), dtype=bool)
    for column in SAME:
        agree &= _same(compared[f"{column}_batch"], compared[f"{column}_api"])
    deferred_b = pd.to_datetime(compared["deferred_until_batch"], utc=True)
    deferred_a = pd.to_datetime(compared["deferred_until_api"], utc=True)
    agree &= _same(deferred_b, deferred_a)
    score_diff = float(
        np.nanmax(np.abs(compared["predicted_uplift_batch"] - compared["predicted_uplift_api"]))
    )
    value_diff = float(
        np.nanmax(np.abs(compared["expected_net_value_batch"] - compared["expected_net_value_api"]))
    )
    agreement = float(agree.mean())
    mismatches = compared.loc[
        ~agree, [*KEYS, "decision_batch", "decision_api", "reason_batch", "reason_api"]
    ]
    by_reason = compared["reason_batch"].value_counts().to_dict()
    print(
        f"api parity: {len(batch)} batch decisions, {len(compared)} compared "
        f"({len(safe)} customers answered a safe default: {safe.value_counts().to_dict()}); "
        f"agreement {agreement:.4%}, max |score diff| {score_diff:.2e}, "
        f"max |net value diff| {value_diff:.2e}; online snapshot = batch snapshot for "
        f"{same_snapshot:.2%}; cut-offs {cutoffs}; batch reasons {by_reason}; "
        f"mismatches:\n{mismatches.head(20).to_string()}"
    )
    assert same_snapshot == 1.0
    # over HTTP, after the release: the day's sends are in the ledger, so the run's recipients
    # reached the daily limit and the campaign's cap is used up
    assert {a["reason"] for a in answers["send"]} == {"daily_message_limit"}
    assert {a["reason"] for a in answers["outside_send_cap"]} <= {"outside_send_cap"}
    assert {a["reason"] for a in answers["no_consent_on_channel"]} == {"no_consent_on_channel"}
    assert all(a["release"] == first.run_id for v in answers.values() for a in v)
    assert len(compared) >= 0.99 * len(batch)
    assert agreement >= MIN_AGREEMENT
    assert score_diff <= MAX_SCORE_DIFF

    # one customer at a time gives the same rows as all of them together
    together = online[online["customer_id"].isin(sample)]
    pair = together.merge(alone, on=KEYS, suffixes=("_all", "_one"))
    assert len(pair) == len(alone) == len(together)
    for column in [*SAME, "predicted_uplift", "expected_net_value"]:
        assert _same(pair[f"{column}_all"], pair[f"{column}_one"]).all(), column
