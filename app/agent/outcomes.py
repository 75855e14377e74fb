"""Typed ends of an agent run, handled by the loop in one place.

A planner, the loop guard or the approval gate raises one of these; `Agent.run` turns it
into a session status and a line in the todo, so no flag is threaded through every call.
"""

from __future__ import annotations


class AgentOutcome(Exception):
    """Base of every controlled stop; `message` is a sentence fit for the todo comment."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NeedsApproval(AgentOutcome):
    """A tool needs `/idp apply` from a maintainer before it may run."""

    def __init__(self, tool: str, task_id: str | None = None) -> None:
        super().__init__(f"`{tool}` needs approval: waiting for `/idp apply` from a maintainer")
        self.tool = tool
        self.task_id = task_id


class NamespaceLocked(NeedsApproval):
    """An approved cluster call whose namespace another session holds
    (app/locks/namespace.py): it stays approved and waits until the lock is free.
    `message` names the holder."""

    DETAIL = "approved; waiting for the namespace lock (the notes say who holds it)"

    def __init__(self, tool: str, task_id: str | None, sentence: str) -> None:
        super().__init__(tool, task_id)
        self.message = sentence


class LoopGuardTripped(AgentOutcome):
    """The run hit a limit (steps, time, repeated call, tokens); `reason` says which."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Cancelled(AgentOutcome):
    """Someone ran `/idp cancel` while the session was running."""

    def __init__(self, by: str | None = None) -> None:
        who = f" by {by}" if by else ""
        super().__init__(f"Cancelled{who}; nothing more runs until a new command.")
        self.by = by


class QuestionForRequester(AgentOutcome):
    """The request lacks something with no safe default; the todo asks and the run waits."""

    def __init__(self, question: str) -> None:
        super().__init__(question)
        self.question = question


class ReplyToRequester(AgentOutcome):
    """The request cannot be planned here; answer with `text` (once) and stop."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
