"""The real-time decision API: a thin HTTP shell (FastAPI) over
``orchestration.core.decisioning.realtime``, beside ``orchestration.defs`` (the Dagster shell).

It decides and records; it never sends (see ``app.py``).
"""
