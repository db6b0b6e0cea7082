"""The outcome window: an order or a session counts as an exposure's outcome when it falls in
``[exposed_at, exposed_at + OUTCOME_WINDOW_DAYS)``.

Part of the raw data contract (``orchestration.core.world.contract`` re-exports it: the outcomes
of ``campaign_exposures`` are defined by it); it lives here, in the lowest layer, because the lift
measurement (``orchestration.core.observability``) sits below the world and needs it too. dbt
states the same window as the ``attribution_window_days`` var in ``dbt_project.yml``; a unit test
keeps the two in step.
"""

from __future__ import annotations

OUTCOME_WINDOW_DAYS = 14
