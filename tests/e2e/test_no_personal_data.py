"""After a run with sends, no raw email address or phone number exists outside the two places
allowed to hold them: the raw contact table and the provider's own store (the local outbox).

Scanned: Dagster's run storage, event logs and compute logs, MLflow's database and artifacts,
reports, decisions, pipeline files, the warehouse, the metrics and alert stores, the send ledger.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

EMAIL = re.compile(rb"[A-Za-z0-9._%+-]+@example\.com")
PHONE = re.compile(rb"\+1555\d{7}")
ALLOWED = {"raw", "downloads"}  # the contact table; the outbox file is checked below


def _files(data_dir: Path):
    for path in data_dir.rglob("*"):
        if not path.is_file():
            continue
        top = path.relative_to(data_dir).parts[0]
        if top in ALLOWED or path.name.startswith("outbox.db"):
            continue
        yield path


def test_no_email_or_phone_outside_the_contact_table_and_the_provider(world):
    s = world["settings"]
    contacts = pd.read_parquet(s.raw_dir / "contact_points.parquet")
    sent = world["first"].success
    assert sent, "the first run must have succeeded for the scan to mean anything"
    assert contacts["address"].str.contains("@example.com").any()
    assert contacts["address"].str.startswith("+1555").any()
    scanned, leaks = 0, []
    for path in _files(s.data_dir):
        scanned += 1
        data = path.read_bytes()
        for pattern in (EMAIL, PHONE):
            found = pattern.search(data)
            if found:
                leaks.append(f"{path.relative_to(s.data_dir)}: {found.group()[:3]!r}…")
    dagster_home = s.data_dir.parent / "dagster_home"
    for path in dagster_home.rglob("*"):
        if path.is_file():
            scanned += 1
            data = path.read_bytes()
            if EMAIL.search(data) or PHONE.search(data):
                leaks.append(str(path.relative_to(dagster_home)))
    assert scanned > 50, f"only {scanned} files scanned: is the data directory right?"
    assert leaks == [], f"personal data outside the gateway: {leaks}"
    # the provider did receive real addresses: the scan is not vacuous
    outbox = (s.gateway_dir / "outbox.db").read_bytes()
    assert EMAIL.search(outbox)
