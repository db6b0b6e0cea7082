"""Plain-Python alerting: alerts, notifiers and a deduplicating incident book (never imports dagster)."""
