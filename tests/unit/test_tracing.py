"""Run traces: the run id is the trace id, one span per stage with its real times and rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestration.core.observability.tracing import (
    StageSpan,
    TraceSettings,
    export_run_trace,
    parse_traceparent,
    read_trace,
    root_span_id,
    trace_id_for_run,
    traceparent,
)

RUN_ID = "7c0b5a4e-9f7d-4b8e-a0b1-3c2d1e0f9a8b"
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)


def _stages() -> list[StageSpan]:
    return [
        StageSpan("raw_data", T0, T0 + timedelta(seconds=3), "success", rows=20_000),
        StageSpan(
            "customer_scores", T0 + timedelta(seconds=3), T0 + timedelta(seconds=5), "success"
        ),
        StageSpan(
            "campaign_release", T0 + timedelta(seconds=5), T0 + timedelta(seconds=6), "failure"
        ),
    ]


def test_the_run_id_is_the_trace_id_and_the_header_carries_it():
    trace_id = trace_id_for_run(RUN_ID)
    assert trace_id == RUN_ID.replace("-", "")
    header = traceparent(trace_id)
    assert header == f"00-{trace_id}-{root_span_id(trace_id)}-01"
    assert parse_traceparent(header) == (trace_id, root_span_id(trace_id))
    assert len(trace_id_for_run("not-a-uuid")) == 32
    with pytest.raises(ValueError, match="traceparent"):
        parse_traceparent("00-abc-01")


def test_a_run_trace_has_a_root_and_a_span_per_stage_with_real_times(tmp_path):
    path = tmp_path / "spans.jsonl"
    settings = TraceSettings(exporter="file", file=path)
    trace_id = export_run_trace(settings, RUN_ID, "campaign_pipeline", "FAILURE", _stages())
    export_run_trace(settings, "11111111-2222-3333-4444-555555555555", "x", "SUCCESS", _stages())
    spans = list(read_trace(path, trace_id))
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {
        "run campaign_pipeline",
        "raw_data",
        "customer_scores",
        "campaign_release",
    }
    root = by_name["run campaign_pipeline"]
    assert root["context"]["span_id"] == f"0x{root_span_id(trace_id)}"
    assert root["parent_id"] is None
    assert root["status"]["status_code"] == "ERROR"
    for name in ("raw_data", "customer_scores", "campaign_release"):
        assert by_name[name]["parent_id"] == root["context"]["span_id"]
    assert by_name["raw_data"]["attributes"]["stage.rows"] == 20_000
    assert by_name["raw_data"]["start_time"].startswith("2026-11-30T10:00:00")
    assert by_name["campaign_release"]["status"]["status_code"] == "ERROR"


def test_tracing_off_writes_nothing_and_otlp_needs_an_endpoint(tmp_path):
    assert (
        export_run_trace(TraceSettings(exporter="none"), RUN_ID, "j", "SUCCESS", _stages()) is None
    )
    with pytest.raises(ValueError, match="CAMPAIGN_TRACE_OTLP_ENDPOINT"):
        export_run_trace(TraceSettings(exporter="otlp"), RUN_ID, "j", "SUCCESS", _stages())
