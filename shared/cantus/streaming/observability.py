"""What a stream service tells its operators: Prometheus metrics per service and topic, and
one JSON object per log line."""

from __future__ import annotations

import json
import logging
import sys

from prometheus_client import Counter, Histogram

EVENTS_IN = Counter("cantus_events_in_total", "Events consumed", ["service", "topic"])
EVENTS_OUT = Counter("cantus_events_out_total", "Events published", ["service", "topic"])
ERRORS = Counter("cantus_errors_total", "Events that failed", ["service", "kind"])
STAGE_LATENCY = Histogram(
    "cantus_stage_latency_seconds",
    "From receiving an input event to publishing its output",
    ["service", "topic"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class JsonFormatter(logging.Formatter):
    """One JSON object per log line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)
