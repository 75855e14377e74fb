"""The words a job uses for how each command ended, and which of them count against it."""

from __future__ import annotations

# The command ran and did not finish: the workflow-failed metric and a red span.
FAILED_OUTCOMES = frozenset({"failed", "error"})
# What the requester sees as "not done" (a confused reaction): a failure, or a refusal.
UNSUCCESSFUL_OUTCOMES = FAILED_OUTCOMES | {"refused"}
