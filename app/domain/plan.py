"""The cluster plan: what `/idp apply` would change, object by object, as pure functions.

A gated cluster step is run first as a server-side dry run (`dryRun=All`); the object the
API server answers with (admitted and defaulted, nothing stored) is compared here with the
live object. Each object is created, changed (these fields, before → after), unchanged,
refused (the API server's words), or unknown when no cluster could be asked.

What "changed" leaves out: fields the API server or a controller writes on its own, never
what an apply changes — `metadata.managedFields`, `resourceVersion`, `uid`,
`creationTimestamp`, `generation`, `selfLink`, all of `status`, and two bookkeeping
annotations (`kubectl.kubernetes.io/last-applied-configuration`, the client-side apply
record, and `deployment.kubernetes.io/revision`, the Deployment controller's counter).

The plan's `digest` covers what is applied (each object's body) and what it changes (each
field's full before and after values): it goes into the approval digest
(app/domain/approval.py), so an apply whose plan changed since approval needs a new one.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

Action = Literal["create", "change", "unchanged", "refused", "unknown"]

NOISE_METADATA = frozenset(
    {"managedFields", "resourceVersion", "uid", "creationTimestamp", "generation", "selfLink"}
)
NOISE_ANNOTATIONS = frozenset(
    {"kubectl.kubernetes.io/last-applied-configuration", "deployment.kubernetes.io/revision"}
)
MAX_CHANGES = 50  # per object kept in the session; the count of the rest is kept
MAX_PLAN_CHANGES = 200  # per plan kept in the session (about what a check run can show)
VALUE_CHARS = 300  # of each before/after value kept in the session
HIDDEN = "(hidden)"  # a Secret's values never reach a comment or a check run


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _sha(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode()
        h.update(b"%d:" % len(data) + data)  # lengths first: no two inputs share a stream
    return h.hexdigest()


class FieldChange(BaseModel):
    """One field the apply changes; None is "absent"."""

    path: str
    before: str | None = None
    after: str | None = None


class ObjectPlan(BaseModel):
    """What the apply does to one object."""

    kind: str
    name: str
    namespace: str | None = None
    action: Action
    changes: list[FieldChange] = Field(default_factory=list)
    more_changes: int = Field(0, description="Changed fields beyond those kept")
    reason: str | None = Field(None, description="Why refused or unknown; a note on create")
    digest: str = Field("", description="sha256 of the applied body, action and full changes")

    @property
    def label(self) -> str:
        return f"{self.kind} {self.name}"


class ClusterPlan(BaseModel):
    """The plan of one gated cluster step (a task of the todo)."""

    tool: str
    target: str = Field(description="Where it applies, e.g. the namespace")
    reached: bool = Field(True, description="False when no cluster could be asked")
    note: str | None = Field(None, description="Why the cluster was not asked, in a sentence")
    objects: list[ObjectPlan] = Field(default_factory=list)

    @property
    def digest(self) -> str:
        """What the approval digest covers: the step, whether the cluster answered, and
        each object's digest in order."""
        return _sha(self.tool, self.target, str(self.reached), *(o.digest for o in self.objects))

    @model_validator(mode="after")
    def _bounded(self) -> ClusterPlan:
        """Past MAX_PLAN_CHANGES fields only their count is kept, so a plan of many objects
        stays small in the session; each object's digest still covers all of its changes."""
        budget = MAX_PLAN_CHANGES
        for obj in self.objects:
            if len(obj.changes) > budget:
                obj.more_changes += len(obj.changes) - budget
                obj.changes = obj.changes[:budget]
            budget -= len(obj.changes)
        return self

    def count(self, action: Action) -> int:
        return sum(1 for o in self.objects if o.action == action)


# -- the diff -------------------------------------------------------------------------------


def comparable(obj: dict[str, Any] | None) -> dict[str, Any]:
    """`obj` without what the server writes on its own (see the module docstring)."""
    if not obj:
        return {}
    out = copy.deepcopy(obj)
    out.pop("status", None)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in NOISE_METADATA:
            meta.pop(key, None)
        notes = meta.get("annotations")
        if isinstance(notes, dict):
            for key in NOISE_ANNOTATIONS:
                notes.pop(key, None)
            if not notes:
                meta.pop("annotations")
    return out


def _step(key: str) -> str:
    simple = key.replace("_", "a").replace("-", "a").isalnum() and not key[:1].isdigit()
    return f".{key}" if simple else f"[{json.dumps(key)}]"


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """path → leaf value. Lists of objects with a `name` are keyed by it (as server-side apply
    merges containers, env, ports); other lists are compared whole, as atomic lists are."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, prefix + _step(str(key))))
        return out
    if (
        isinstance(value, list)
        and value
        and all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in value)
    ):
        out = {}
        for item in value:
            out.update(flatten(item, f"{prefix}[name={json.dumps(item['name'])}]"))
        return out
    return {prefix: value}


def _secret_path(kind: str, path: str) -> bool:
    return kind == "Secret" and path.startswith((".data", ".stringData"))


def _shown(value: Any, hidden: bool) -> str:
    if hidden:
        return HIDDEN
    text = value if isinstance(value, str) else _canonical(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"


def field_changes(live: dict[str, Any], result: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """(path, before, after) of every field that differs, noise left out; a missing field
    is `...` (Ellipsis), so a null value and an absent one stay apart."""
    before, after = flatten(comparable(live)), flatten(comparable(result))
    return [
        (path, before.get(path, ...), after.get(path, ...))
        for path in sorted(set(before) | set(after))
        if before.get(path, ...) != after.get(path, ...)
    ]


def object_plan(
    applied: dict[str, Any],
    live: dict[str, Any] | None,
    result: dict[str, Any] | None,
    *,
    reached: bool = True,
    refused: str | None = None,
    note: str | None = None,
) -> ObjectPlan:
    """The change record of one object: `applied` is the body sent, `live` the object now
    (None: it does not exist), `result` the dry run's answer. `reached` False: no cluster
    was asked; `refused`: the API server's sentence for a dry run it refused."""
    meta = applied.get("metadata") or {}
    kind, name = str(applied.get("kind", "")), str(meta.get("name", ""))
    changes: list[tuple[str, Any, Any]] = []
    if not reached:
        action: Action = "unknown"
    elif refused is not None:
        action, note = "refused", refused
    elif live is None:
        action = "create"
    else:
        changes = field_changes(live, result or {})
        action = "change" if changes else "unchanged"
    full = [
        (p, "" if b is ... else _canonical(b), "" if a is ... else _canonical(a))
        for p, b, a in changes
    ]
    kept = [
        FieldChange(
            path=p,
            before=None if b is ... else _shown(b, _secret_path(kind, p)),
            after=None if a is ... else _shown(a, _secret_path(kind, p)),
        )
        for p, b, a in changes[:MAX_CHANGES]
    ]
    return ObjectPlan(
        kind=kind,
        name=name,
        namespace=meta.get("namespace"),
        action=action,
        changes=kept,
        more_changes=max(0, len(changes) - MAX_CHANGES),
        reason=note,
        digest=_sha(_canonical(applied), action, *(x for change in full for x in change)),
    )
