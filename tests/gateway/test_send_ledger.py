"""The send ledger and outbox: exactly once per (campaign, customer, channel, day)."""

from orchestration.core.delivery.ledger import SendLedger
from orchestration.core.delivery.outbox import OutboxProvider
from tests.gateway.raw_world import deliver, release
from tests.gateway.raw_world import recipients as _recipients


def test_second_run_on_the_same_day_sends_nothing_new(tmp_path, raw_dir):
    ledger = SendLedger(tmp_path / "ledger.db")
    outbox = OutboxProvider(tmp_path / "outbox.db")
    first = deliver(_recipients([1, 2, 3]), "2026-11-23", "run-a", ledger, outbox, raw_dir)
    second = deliver(_recipients([1, 2, 3]), "2026-11-23", "run-b", ledger, outbox, raw_dir)
    assert (first.newly_due, first.delivered) == (3, 3)
    assert (second.newly_due, second.delivered, second.already_in_ledger) == (0, 0, 3)
    assert outbox.received() == 3


def test_next_day_is_a_new_send(tmp_path, raw_dir):
    ledger = SendLedger(tmp_path / "ledger.db")
    outbox = OutboxProvider(tmp_path / "outbox.db")
    deliver(_recipients([1]), "2026-11-23", "run-a", ledger, outbox, raw_dir)
    report = deliver(_recipients([1]), "2026-11-24", "run-b", ledger, outbox, raw_dir)
    assert report.delivered == 1
    assert outbox.received() == 2


def test_a_message_left_due_by_a_crash_is_delivered_once_on_rerun(tmp_path, raw_dir):
    ledger = SendLedger(tmp_path / "ledger.db")
    outbox = OutboxProvider(tmp_path / "outbox.db")
    # crash after recording due and after the provider accepted, before marking delivered
    release(ledger, _recipients([1, 2]), "2026-11-23", "crashed-run")
    claimed = ledger.claim_due("crashed-run", limit=10)
    from orchestration.core.delivery.outbox import OutgoingMessage

    outbox.send_batch(
        [
            OutgoingMessage(m.idempotency_key, m.campaign, m.customer_id, m.channel, "x", "t")
            for m in claimed[:1]
        ]
    )
    ledger.release([m.idempotency_key for m in claimed])  # lease handed back (or expired)
    report = deliver(_recipients([1, 2]), "2026-11-23", "rerun", ledger, outbox, raw_dir)
    assert report.newly_due == 0
    assert report.delivered == 2
    assert report.duplicates_prevented == 1
    assert outbox.received() == 2
    assert ledger.counts() == {"delivered": 2}


def test_customer_without_verified_contact_point_fails_with_a_reason(tmp_path, raw_dir):
    ledger = SendLedger(tmp_path / "ledger.db")
    outbox = OutboxProvider(tmp_path / "outbox.db")
    report = deliver(_recipients([4, 5]), "2026-11-23", "run-a", ledger, outbox, raw_dir)
    assert report.delivered == 0
    # 4 is opted in without a verified address; 5 has no consent at all (stopped before lookup)
    assert report.failures_by_reason == {
        "no_verified_contact_point": 1,
        "consent_withdrawn_before_dispatch": 1,
    }
    assert (report.failed, report.cancelled) == (1, 1)
    assert outbox.received() == 0


def test_ledger_and_report_carry_no_contact_details(tmp_path, raw_dir):
    ledger = SendLedger(tmp_path / "ledger.db")
    outbox = OutboxProvider(tmp_path / "outbox.db")
    report = deliver(_recipients([1, 2]), "2026-11-23", "run-a", ledger, outbox, raw_dir)
    assert "@" not in repr(report.as_metadata())
    assert not ledger.frame().astype(str).apply(lambda col: col.str.contains("@")).any().any()


def test_threads_sharing_one_ledger_count_each_new_row_once(tmp_path):
    """The decision API's workers share one ledger object (one SQLite connection): concurrent
    enqueues of overlapping keys must neither interleave their transactions nor miscount."""
    import threading

    ledger = SendLedger(tmp_path / "ledger.db")
    release(ledger, _recipients([0]), "2026-11-23", "r1")
    start = threading.Barrier(6)
    counts, errors = [], []

    def enqueue(worker: int) -> None:
        start.wait()
        for customer in range(1, 41):  # every worker enqueues the same 40 customers
            try:
                new = ledger.enqueue_under_release("r1", _recipients([customer]), "2026-11-23")
                counts.append(new)
            except Exception as exc:  # noqa: BLE001 - the test reports any failure
                errors.append(repr(exc))

    threads = [threading.Thread(target=enqueue, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(counts) == 6 * 40
    assert sum(counts) == 40  # each (campaign, customer, channel, day) is new exactly once
    assert len(ledger.frame()) == 41
