"""The training set's sample: all exposures up to the cap, beyond it a stable sample of whole
customers that keeps both arms and does not depend on the row order."""

from __future__ import annotations

import numpy as np
import pandas as pd

from orchestration.core.model.training import sample_training_entities


def _entities(customers: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    exposures = rng.integers(1, 4, customers)  # 1-3 exposures per customer
    customer_id = np.repeat(np.arange(1, customers + 1), exposures)
    return pd.DataFrame(
        {
            "exposure_id": np.arange(customer_id.size),
            "customer_id": customer_id,
            "is_treated": rng.integers(0, 2, customer_id.size).astype("int8"),
        }
    )


def test_below_the_cap_every_exposure_is_kept() -> None:
    entities = _entities(1_000)
    kept, sample = sample_training_entities(entities, max_rows=len(entities))
    assert len(kept) == len(entities) and not sample.is_sampled
    assert sample.describe() == f"all {len(entities):,} exposures"


def test_above_the_cap_whole_customers_are_sampled_stably_with_both_arms() -> None:
    entities = _entities(20_000)
    kept, sample = sample_training_entities(entities, max_rows=10_000)
    assert sample.is_sampled and sample.rows == len(kept)
    assert 9_000 < len(kept) < 11_000
    assert "of" in sample.describe() and "CAMPAIGN_TRAINING_MAX_ROWS=10,000" in sample.describe()
    # a customer is in with all their exposures or not at all
    in_sample = set(kept["customer_id"])
    per_customer = entities[entities["customer_id"].isin(in_sample)]
    assert len(per_customer) == len(kept)
    assert set(kept["is_treated"]) == {0, 1}
    # the same exposures whatever order the rows came in
    shuffled = entities.sample(frac=1.0, random_state=1)
    again, _ = sample_training_entities(shuffled, max_rows=10_000)
    assert set(again["exposure_id"]) == set(kept["exposure_id"])
