"""Job functions run by the RQ worker."""

from __future__ import annotations

from typing import Any


def run_trigger(trigger: dict[str, Any]) -> dict[str, Any]:
    """Placeholder until the worker side lands: record that the job ran."""
    return {"received": trigger.get("delivery_id")}
