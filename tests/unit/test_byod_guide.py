"""The bring-your-own-data guide documents every error the raw validation can report.

The messages are read from the validator's source (tests/support/error_messages.py), not copied
here, so a new or reworded message fails this test until docs/bring-your-own-data.md explains it.
"""

from __future__ import annotations

import pytest

from orchestration.settings import PROJECT_DIR
from tests.support.error_messages import fragments, messages

GUIDE = PROJECT_DIR / "docs" / "bring-your-own-data.md"
SOURCES = [
    ("orchestration/core/world/validation.py", ("add",)),
    ("orchestration/core/world/attributes.py", ("ValueError",)),
    ("orchestration/core/world/warehouse_source.py", ("WarehouseSourceError",)),
]
TEMPLATES = [
    (source, template)
    for source, calls in SOURCES
    for template in messages(PROJECT_DIR / source, calls)
]


def test_the_sources_have_messages_to_document():
    # the reader finds the messages: a refactor that hides them would make the test vacuous
    counts = {source: sum(1 for s, _ in TEMPLATES if s == source) for source, _ in SOURCES}
    assert counts["orchestration/core/world/validation.py"] >= 15
    assert counts["orchestration/core/world/attributes.py"] >= 6
    assert counts["orchestration/core/world/warehouse_source.py"] >= 2


@pytest.mark.parametrize(("source", "template"), TEMPLATES)
def test_every_error_message_is_in_the_guide(source, template):
    guide = GUIDE.read_text()
    missing = [f for f in fragments(template) if f not in guide]
    assert not missing, f"{source}: document this message in {GUIDE.name}: {template!r}"


def test_the_readme_points_to_the_guide():
    assert "docs/bring-your-own-data.md" in (PROJECT_DIR / "README.md").read_text()
