"""The state a decision reads besides the request and the ledger, and the loader that builds it
from the data directory (reusing what did not change)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from orchestration.core.decisioning.campaigns import Campaign, load_campaigns
from orchestration.core.decisioning.decide import (
    CHALLENGER,
    CHAMPION,
    model_ref,
)
from orchestration.core.decisioning.policy import VersionedPolicy, load_policy
from orchestration.core.decisioning.realtime.customer_records import CustomerRecords
from orchestration.core.decisioning.realtime.ledger_reader import (
    LedgerReader,
    StandingRelease,
    release_cutoffs,
    standing_release,
)
from orchestration.core.decisioning.realtime.online_reads import FeatureReader, feature_reader
from orchestration.core.decisioning.realtime.online_scoring import (
    Scorer,
    pyfunc_arm_predictor,
    pyfunc_predictor,
)
from orchestration.core.decisioning.realtime.timestamps import file_stamp
from orchestration.core.decisioning.scoring import arm_learner, offered_arms
from orchestration.settings import Settings


def canary_shares(
    settings: Settings, campaigns: Iterable[Campaign], challengers: Mapping[str, str]
):
    """Each campaign's challenger share: its configured one, or 0 while the canary of its model is
    tripped for the challenger version in service (read only: ``canary.effective_challenger_shares``
    without resetting the state file, which the batch owns)."""
    from orchestration.core.decisioning.canary import load_state

    shares: dict[str, float] = {}
    for campaign in campaigns:
        share = float(campaign.challenger_share)
        if share > 0 and campaign.model.alias == CHAMPION:
            state = load_state(settings, campaign.model.name)
            version = challengers.get(campaign.model.name)
            if version is None or (state.tripped and state.challenger_version == version):
                share = 0.0
        shares[campaign.name] = share
    return shares


# --- the state the service holds -----------------------------------------------------------------


@dataclass(frozen=True)
class ServingState:
    """Everything a decision reads besides the request and the ledger, loaded once and swapped
    whole when something it was loaded from changes."""

    loaded_at: datetime
    signature: dict[str, Any]
    campaigns: dict[str, Campaign] = field(default_factory=dict)
    campaign_hashes: dict[str, str] = field(default_factory=dict)
    policy: VersionedPolicy | None = None
    scorers: dict[str, Scorer] = field(default_factory=dict)
    features: FeatureReader | None = None
    feature_version: str | None = None
    release: StandingRelease | None = None
    cutoffs: dict[str, float | None] | None = None
    customers: CustomerRecords | None = None
    canary_shares: dict[str, float] = field(default_factory=dict)
    problems: tuple[str, ...] = ()
    online: dict[str, Any] = field(default_factory=dict)

    def not_released(self) -> list[str]:
        """Why the state as a whole is not the latest standing release's (empty: it is)."""
        release = self.release
        if release is None:
            return ["no standing release in the ledger (none yet, or every one revoked)"]
        out = []
        if self.policy is not None and self.policy.version != release.policy_version:
            out.append(f"policy {self.policy.version} is not the released {release.policy_version}")
        if self.feature_version != release.feature_version:
            out.append(
                f"feature version {self.feature_version} is not the released "
                f"{release.feature_version}"
            )
        if self.cutoffs is None:
            out.append(f"the decisions of release {release.run_id} are missing (no cut-offs)")
        return out

    def campaign_not_released(self, name: str) -> list[str]:
        release = self.release
        out = self.not_released()
        if release is not None and name in self.campaign_hashes:
            file_name, digest = next(iter(self.campaign_hashes[name].items()))
            if release.campaign_files.get(file_name) != digest:
                out.append(f"campaign file {file_name} is not the released one")
        return out

    def scorer_for(self, campaign: Campaign) -> Scorer | None:
        return self.scorers.get(model_ref(campaign.model.name, campaign.model.alias))


def wanted_refs(campaigns: Iterable[Campaign], default_model: str) -> list[tuple[str, str]]:
    from orchestration.core.decisioning.scoring import wanted_model_refs

    return wanted_model_refs([c for c in campaigns if c.enabled], default_model)


class StateLoader:
    """Loads a ``ServingState`` from the configured data directory: Feast, MLflow, the policy,
    the campaigns, the ledger's standing release, the raw customer data. ``signature`` is cheap
    (file stamps, alias versions, the releases table, the online store's record of its bulk
    writes); ``load`` reuses what did not change."""

    def __init__(self, settings: Settings, ledger: LedgerReader):
        self.settings = settings
        self.ledger = ledger
        self._client = None
        self._store = None
        self._online: tuple[Any, Any] | None = None  # (online store, its repo config)

    def _mlflow(self):
        if self._client is None:
            from orchestration.core.model.registry import configure

            self._client = configure(self.settings)
        return self._client

    def signature(self) -> dict[str, Any]:
        from orchestration.core.decisioning.campaigns import campaign_files
        from orchestration.core.decisioning.canary import state_path
        from orchestration.core.features.publishing import current_feature_version
        from orchestration.core.model.registry import alias_version

        s = self.settings
        files = [s.policy_file, *campaign_files(s.campaigns_dir), state_path(s)]
        files += CustomerRecords.files(s.raw_dir)
        current = current_feature_version(s.features_dir)
        releases = self.ledger.releases()
        loaded = load_campaigns(s.campaigns_dir).campaigns.values()
        aliases: dict[str, str | None] = {}
        try:
            client = self._mlflow()
            for name, alias in wanted_refs(loaded, s.model_name):
                aliases[model_ref(name, alias)] = alias_version(client, name, alias)
        except Exception as exc:  # noqa: BLE001 - reported by load as a problem
            aliases["error"] = str(exc)[:200]
        return {
            "files": {str(p): file_stamp(p) for p in files},
            "features": current.version if current else None,
            "releases": releases[["run_id", "status"]].to_dict("records") if len(releases) else [],
            "aliases": aliases,
            # the registry: feature definitions (a new reader) and the materializations it records
            "online_store": file_stamp(s.feast_dir / "registry.db"),
            # the online store's own record of its bulk writes (Redis): a rematerialization by
            # a process with another registry (another host, a copy) changes nothing above
            "online_data": self._online_marker(),
        }

    def _online_marker(self) -> Any:
        """The online store's ``materializations`` (None for a store without that record)."""
        try:
            if self._online is None:
                from feast.infra.online_stores.helpers import get_online_store_from_config

                from orchestration.core.features.feast_store import open_feature_store

                config = open_feature_store(self.settings).config
                self._online = (get_online_store_from_config(config.online_store), config)
            store, config = self._online
            read = getattr(store, "materializations", None)
            return read(config) if read is not None else None
        except Exception as exc:  # noqa: BLE001 - an unreachable store: decisions report it
            return {"error": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__}

    def load(self, previous: ServingState | None, signature: dict[str, Any]) -> ServingState:
        s = self.settings
        problems: list[str] = []
        loaded = load_campaigns(s.campaigns_dir)
        problems += [f"campaign file: {error}" for error in loaded.errors.values()]
        from orchestration.core.delivery.releases import file_hashes

        hashes = {n: file_hashes([p]) for n, p in loaded.sources.items()}
        policy = None
        try:
            policy = load_policy(s.policy_file)
        except Exception as exc:  # noqa: BLE001 - a broken policy decides nothing
            problems.append(f"policy: {exc}")
        features = self._features(previous, signature, problems)
        scorers = self._scorers(previous, signature, loaded.campaigns.values(), problems)
        release = standing_release(self.ledger.releases())
        cutoffs = release_cutoffs(s.decisions_dir, release) if release else None
        customers = self._customers(previous, problems)
        challengers = {sc.name: sc.version for sc in scorers.values() if sc.alias == CHALLENGER}
        return ServingState(
            loaded_at=datetime.now(UTC),
            signature=signature,
            campaigns=dict(loaded.campaigns),
            campaign_hashes=hashes,
            policy=policy,
            scorers=scorers,
            features=features,
            feature_version=signature.get("features"),
            release=release,
            cutoffs=cutoffs,
            customers=customers,
            canary_shares=canary_shares(s, loaded.campaigns.values(), challengers),
            problems=tuple(problems),
        )

    def _features(self, previous, signature, problems) -> FeatureReader | None:
        from orchestration.core.features.feast_store import FEATURE_SERVICE, open_feature_store

        same = (
            previous is not None
            and previous.features is not None
            and (previous.signature.get("online_store") == signature.get("online_store"))
        )
        if same:
            return previous.features
        try:
            self._store = open_feature_store(self.settings)
            return feature_reader(self._store, FEATURE_SERVICE)
        except Exception as exc:  # noqa: BLE001 - no registry yet: every decision is unavailable
            problems.append(f"feature store: {str(exc).splitlines()[0][:300]}")
            return None

    def _scorers(self, previous, signature, campaigns, problems) -> dict[str, Scorer]:
        from orchestration.core.model.registry import load_alias

        out: dict[str, Scorer] = {}
        for name, alias in wanted_refs(campaigns, self.settings.model_name):
            ref = model_ref(name, alias)
            version = signature["aliases"].get(ref)
            if version is None:
                problems.append(f"model {ref}: no version behind the alias")
                continue
            old = previous.scorers.get(ref) if previous else None
            if old is not None and old.version == version:
                out[ref] = old
                continue
            try:
                settings = self.settings.model_copy(update={"model_name": name})
                model = load_alias(settings, alias)
            except Exception as exc:  # noqa: BLE001 - reported; its campaigns are unavailable
                problems.append(f"model {ref}: {str(exc).splitlines()[0][:300]}")
                continue
            out[ref] = _scorer(settings, name, alias, str(version), model)
        return out

    def _customers(self, previous, problems) -> CustomerRecords | None:
        raw = self.settings.raw_dir
        stamp = tuple(file_stamp(p) for p in CustomerRecords.files(raw))
        if (
            previous is not None
            and previous.customers is not None
            and previous.customers.stamp == stamp
        ):
            return previous.customers
        try:
            return CustomerRecords.load(raw)
        except Exception as exc:  # noqa: BLE001 - no raw data: every decision is unavailable
            problems.append(f"raw customer data: {str(exc).splitlines()[0][:300]}")
            return None


def _scorer(settings: Settings, name: str, alias: str, version: str, model: Any) -> Scorer:
    """A loaded model version as a Scorer; a multi-arm one with the arms its own evaluation
    offers (the batch's ``scoring.offered_arms``)."""
    arms = pyfunc_arm_predictor(model)
    if arms is None:
        return Scorer(name, alias, version, pyfunc_predictor(model))
    from orchestration.core.model.registry import configure

    client = configure(settings)
    run_id = client.get_model_version(name, version).run_id
    offered = offered_arms(client.get_run(run_id).data.metrics, settings) or ()
    return Scorer(
        name,
        alias,
        version,
        pyfunc_predictor(model),
        predict_arms=arms,
        arms=tuple(arm_learner(model).arms_),
        offered=tuple(offered),
    )
