"""The decision service's direct online reads (``realtime.online_reads.DirectFeatureReader``: the
online store's own ``online_read``) against Feast's ``get_online_features`` (``FeastFeatureReader``),
on the packed SQLite store and on Redis (a real redis-server).

The small feature world of ``online_world.py`` is materialized into each store once per module:
every scalar feature type (a service over all four views, strings included), nulls, NaNs, wide
integers, customers missing from one view, one from all, and an older row.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from orchestration.settings import Settings
from tests.conftest import point_at
from tests.features.online_world import (
    EXTRAS,
    IDS,
    MISSING,
    NEWEST,
    NO_CONSENT,
    ONLY_OLDER_SNAPSHOT,
    SNAPSHOTS,
    build_world,
    feature_store,
    materialize_all,
)

ALL_VIEWS = "all_views"


def _stores(data_dir, redis_server):
    import orchestration.core.features.online_store as packed
    import orchestration.core.features.redis_online_store as bulk

    engine = {"type": packed.ENGINE_TYPE}
    connection = f"127.0.0.1:{redis_server.port},db={redis_server.fresh_db()}"
    return {
        "sqlite": lambda s: feature_store(s, s.feast_dir, {"type": packed.STORE_TYPE}, engine),
        "redis": lambda s: feature_store(
            s,
            data_dir / "feast_redis",
            {"type": bulk.STORE_TYPE, "connection_string": connection},
            engine,
        ),
    }


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def store(request, tmp_path_factory):
    from feast import FeatureService

    data_dir = tmp_path_factory.mktemp(f"direct_reads_{request.param}") / "data"
    with pytest.MonkeyPatch.context() as mp:
        point_at(mp, data_dir)
        settings = Settings.from_env()
        world = build_world(settings)
        make = _stores(data_dir, request.getfixturevalue("redis_server"))[request.param]
        feast = make(settings)
        views = list(world["views"].values())
        everything = FeatureService(name=ALL_VIEWS, features=views)
        feast.apply([world["customer"], world["service"], everything, *views])
        materialize_all(feast)
        yield feast


def _both(store, service: str, ids: list[int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    from orchestration.core.decisioning.realtime import DirectFeatureReader, FeastFeatureReader

    direct = DirectFeatureReader(store, service)
    assert direct.columns == FeastFeatureReader(store, service).columns
    return direct.read(ids), FeastFeatureReader(store, service).read(ids)


@pytest.mark.parametrize("service", ["uplift_model_v1", ALL_VIEWS])
def test_direct_reads_are_feasts_reads(store, service):
    ids = [*IDS.tolist(), MISSING, int(IDS[0])]  # every entity, a missing one, a repeated one
    direct, feast = _both(store, service, ids)
    pd.testing.assert_frame_equal(direct, feast, check_exact=True)
    # what the comparison covered: the missing customer, a view missing, an older row, nulls
    row = {c: i for i, c in enumerate(ids)}
    assert direct.loc[row[MISSING], "feature_timestamp"] is pd.NaT
    no_consent = row[next(iter(NO_CONSENT))]
    assert pd.isna(direct.loc[no_consent, "is_email_opted_in"])
    assert pd.isna(direct.loc[no_consent, "feature_timestamp"])
    older = row[next(iter(ONLY_OLDER_SNAPSHOT))]
    assert direct.loc[older, "feature_timestamp"] == pd.Timestamp(SNAPSHOTS[0])
    assert direct.loc[0, "feature_timestamp"] == pd.Timestamp(NEWEST)
    numbers = direct.drop(columns=["customer_id", "feature_timestamp"])
    if service == ALL_VIEWS:
        assert numbers["label"].map(lambda v: isinstance(v, str)).any()  # strings kept as they are
    else:
        assert all(numbers.dtypes == np.float64)
        assert numbers.isna().any().all() and numbers.notna().any().all()
        assert np.isinf(numbers["days_since_last_order"]).any()


def test_a_single_customer_and_none(store):
    for ids in ([int(IDS[3])], [MISSING]):
        direct, feast = _both(store, "uplift_model_v1", ids)
        pd.testing.assert_frame_equal(direct, feast, check_exact=True)


def test_the_service_picks_the_direct_reader_for_the_project_service(store):
    from orchestration.core.decisioning.realtime import DirectFeatureReader, feature_reader

    assert isinstance(feature_reader(store, "uplift_model_v1"), DirectFeatureReader)
    assert EXTRAS in {p.name for p in store.get_feature_service(ALL_VIEWS).feature_view_projections}
