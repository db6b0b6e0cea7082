"""Real-time decisions: a customer (or a few hundred at once) decided at the moment of a request by
the batch's own policy engine (``engine.evaluate``), on the online features.

Plain Python (no dagster, no web framework): ``orchestration/api`` is the HTTP shell over it.
One module per part: ``customer_records`` (raw candidates), ``ledger_reader`` (the ledger, the
standing release, its cut-offs), ``online_reads`` (Feast online reads), ``online_scoring`` (scorers),
``customer_decisions`` (the engine per customer), ``serving_state`` (what is loaded and when),
``decision_store`` (the API's decisions), ``service`` (the ``DecisionService``); for triggered
campaigns ``event_store`` (events by id), ``session_features`` (the Feast push source) and
``triggers`` (an event decided and its sends enqueued under the standing release).

**A decision request never sends.** Sending from ``/v1/decisions`` would be a path around the
release door (``core/delivery/releases.py``): a message reaches the ledger only through a release
of a run whose blocking checks passed. A real-time decision is recorded in the decisions store
(the batch schema plus ``decided_via = "api"``) and answered; nothing is enqueued. The one path
that enqueues is a triggered campaign's event (``triggers``), and only as due rows *of the
standing release* it was decided under, re-read in the ledger's own transaction: revoking that
release cancels them with the rest, and the gateway's dispatch re-checks consent, suppression and
the kill switch.

What one decision is built from, as of its decision time ``decided_at``:

* **candidates**: the raw customer row (region, time zone, sign-up time) with consent and
  suppression computed from the raw consent events and suppression list exactly as
  ``dim_customers`` computes them (per channel the latest consent event at or before the time,
  ties by the later event id; suppressions stamped at or before it, a null channel on every
  channel), and the gateway's reachability flags (``reachability_flags``: a verified contact
  point exists; addresses are never read). A customer not signed up by then is unknown;
* **scores**: the online features (Feast, in-process) scored by the model versions behind the
  campaigns' aliases (the champion; the challenger for a salted ``challenger_share`` of a
  campaign running a canary: ``decide.campaign_scores``, the batch's own split);
* **contact history and today's sends**: that customer's ledger rows over the policy's longest cap
  window, and each campaign's sends today;
* then ``engine.evaluate``: global control and holdout by the same salted hashes, consent,
  suppression, reachability, eligibility, caps, the daily limit, worth, arbitration across the
  live campaigns and quiet hours.

**Batch-level constraints.** ``max_sends`` (or the budget) is a top-k over the whole audience; a
per-customer decision cannot rank against customers it does not see. Here every campaign gets room
for all the customers decided together, so each customer's decision depends on that customer only,
and the campaign's cap is applied through the **released cut-off**: when the cap bound in the
campaign's last released run (some rows ``outside_send_cap``), its lowest accepted expected net
value; a customer the engine accepts below it is ``outside_send_cap`` and, as in the batch, falls
to their next campaign. When the campaign's sends in the ledger today already reach its cap, every
customer is ``outside_send_cap``. Arbitration between campaigns is per customer and exact;
``value_rank`` has no meaning for one customer and is left empty. One approximation: when the caps
of several campaigns bind, the batch fills them in rounds (a customer who falls to a campaign in a
later round competes only for the places the first round left), which one cut-off per campaign
does not reproduce exactly.

**Safe defaults.** Whenever the state is not one a release let through, or the data is not good
enough, the answer is decision ``no_send`` with a reason, never an error:

* ``not_released``: no standing (not revoked) release, or the model version that would score the
  customer, the policy version, the published feature version or the campaign's file is not the
  one of the latest standing release (or that release's decisions, its cut-offs, are missing);
* ``stale_features``: the customer's online features are missing or older than
  ``thresholds.online_freshness_hours`` (Feast returns stale online values as present);
* ``unknown_customer``: no raw customer row signed up by the decision time;
* ``campaign_disabled``: the campaign file says ``enabled: false``;
* ``unavailable``: a part of the state could not be loaded (no feature registry, no model...).
"""

from orchestration.core.decisioning.engine import DECISIONS
from orchestration.core.decisioning.realtime.customer_decisions import decide_customers
from orchestration.core.decisioning.realtime.customer_records import CustomerRecords
from orchestration.core.decisioning.realtime.decision_store import (
    ApiDecisionStore,
    api_decisions,
    request_digest,
    store_path,
)
from orchestration.core.decisioning.realtime.ledger_reader import (
    LedgerReader,
    StandingRelease,
    release_cutoffs,
    send_cutoffs,
    standing_release,
)
from orchestration.core.decisioning.realtime.online_reads import (
    DirectFeatureReader,
    FeastFeatureReader,
    FeatureReader,
    feature_reader,
)
from orchestration.core.decisioning.realtime.online_scoring import (
    Scorer,
    pyfunc_predictor,
    score_frame,
)
from orchestration.core.decisioning.realtime.reasons import (
    API_RUN_ID,
    CAMPAIGN_DISABLED,
    DECIDED_VIA,
    EVENT_TRIGGERED,
    NO_SEND,
    NOT_RELEASED,
    SAFE_REASON_TEXT,
    STALE_FEATURES,
    TRIGGER_NOT_MET,
    UNAVAILABLE,
    UNKNOWN_CUSTOMER,
    reason_text,
)
from orchestration.core.decisioning.realtime.service import (
    DecisionRequest,
    DecisionService,
    Evaluated,
    RequestIdReused,
    UnknownCampaign,
)
from orchestration.core.decisioning.realtime.serving_state import (
    ServingState,
    StateLoader,
    canary_shares,
)

__all__ = [
    "API_RUN_ID",
    "CAMPAIGN_DISABLED",
    "DECIDED_VIA",
    "DECISIONS",
    "EVENT_TRIGGERED",
    "NOT_RELEASED",
    "NO_SEND",
    "SAFE_REASON_TEXT",
    "STALE_FEATURES",
    "TRIGGER_NOT_MET",
    "UNAVAILABLE",
    "UNKNOWN_CUSTOMER",
    "ApiDecisionStore",
    "CustomerRecords",
    "DecisionRequest",
    "DecisionService",
    "DirectFeatureReader",
    "Evaluated",
    "FeastFeatureReader",
    "FeatureReader",
    "LedgerReader",
    "RequestIdReused",
    "Scorer",
    "ServingState",
    "StandingRelease",
    "StateLoader",
    "UnknownCampaign",
    "api_decisions",
    "canary_shares",
    "decide_customers",
    "feature_reader",
    "pyfunc_predictor",
    "reason_text",
    "release_cutoffs",
    "request_digest",
    "score_frame",
    "send_cutoffs",
    "standing_release",
    "store_path",
]
