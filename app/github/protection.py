"""Branch protection as the App reads and writes it, and the rule that it only ever makes a
branch stricter: `BranchRules.stricter` keeps each rule of the branch's current protection
that is stricter than what the App asks for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.github.errors import ForgeError


def branch_protection(
    required_reviews: int, required_checks: list[str], enforce_admins: bool
) -> dict[str, Any]:
    """Branch protection as GitHub's PUT …/branches/{branch}/protection takes it (LocalForge
    records the same): pull requests with `required_reviews` approvals, stale ones dismissed,
    the checks passing on an up-to-date branch, no push restrictions."""
    return BranchRules.asked(required_reviews, required_checks, enforce_admins).body()


# Protection switches that only ever make a branch stricter when on. The `allow_*` switches
# (force pushes, deletions, fork syncing) are left out: off is their default and strictest.
STRICT_FLAGS = (
    "required_linear_history",
    "required_conversation_resolution",
    "block_creations",
    "lock_branch",
)
_REVIEW_FLAGS = (
    "dismiss_stale_reviews",
    "require_code_owner_reviews",
    "require_last_push_approval",
)


@dataclass(frozen=True)
class BranchRules:
    """A branch's protection, as far as the App reads and writes it. `required_reviews`
    None: no pull request needed; `required_checks` empty: no status checks. `restrictions`
    and `dismissal_restrictions` (who may push, who may dismiss reviews) are kept as the
    PUT body spells them."""

    required_reviews: int | None = None
    required_checks: tuple[str, ...] = ()
    strict: bool = False
    enforce_admins: bool = False
    review_flags: frozenset[str] = frozenset()
    flags: frozenset[str] = frozenset()
    restrictions: dict[str, list[str]] | None = None
    dismissal_restrictions: dict[str, list[str]] | None = None

    @classmethod
    def asked(cls, required_reviews: int, checks: list[str], enforce_admins: bool) -> BranchRules:
        """What the App asks for: reviews (stale ones dismissed), the checks on an
        up-to-date branch."""
        names = tuple(dict.fromkeys(c.strip() for c in checks if c.strip()))
        return cls(
            required_reviews=required_reviews,
            required_checks=names,
            strict=bool(names),
            enforce_admins=enforce_admins,
            review_flags=frozenset({"dismiss_stale_reviews"}),
        )

    @classmethod
    def from_github(cls, data: dict[str, Any]) -> BranchRules:
        """GET …/branches/{branch}/protection's answer (LocalForge records the PUT body,
        which this reads too)."""

        def on(value: Any) -> bool:
            return bool(value.get("enabled")) if isinstance(value, dict) else bool(value)

        def people(value: Any) -> dict[str, list[str]] | None:
            if not isinstance(value, dict):
                return None
            return {
                kind: [
                    (u.get("login") or u.get("slug") or "") if isinstance(u, dict) else str(u)
                    for u in value.get(kind) or []
                ]
                for kind in ("users", "teams", "apps")
            }

        checks = data.get("required_status_checks") or {}
        names = [c.get("context", "") for c in checks.get("checks") or []]
        names = names or list(checks.get("contexts") or [])
        reviews = data.get("required_pull_request_reviews")
        return cls(
            required_reviews=(
                int(reviews.get("required_approving_review_count", 1))
                if isinstance(reviews, dict)
                else None
            ),
            required_checks=tuple(dict.fromkeys(n for n in names if n)),
            strict=bool(checks.get("strict")),
            enforce_admins=on(data.get("enforce_admins")),
            review_flags=frozenset(
                f for f in _REVIEW_FLAGS if isinstance(reviews, dict) and reviews.get(f)
            ),
            flags=frozenset(f for f in STRICT_FLAGS if on(data.get(f))),
            restrictions=people(data.get("restrictions")),
            dismissal_restrictions=people(
                reviews.get("dismissal_restrictions") if isinstance(reviews, dict) else None
            ),
        )

    def stricter(self, other: BranchRules | None) -> BranchRules:
        """Each rule at the stricter of the two: more reviews, every check of both, admins
        bound if either binds them, each switch on if either has it; the pushers and
        dismissers `other` (the branch's current protection) restricts stay restricted."""
        if other is None:
            return self
        counts = [n for n in (self.required_reviews, other.required_reviews) if n is not None]
        return BranchRules(
            required_reviews=max(counts) if counts else None,
            required_checks=tuple(dict.fromkeys((*other.required_checks, *self.required_checks))),
            strict=self.strict or other.strict,
            enforce_admins=self.enforce_admins or other.enforce_admins,
            review_flags=self.review_flags | other.review_flags,
            flags=self.flags | other.flags,
            restrictions=other.restrictions or self.restrictions,
            dismissal_restrictions=other.dismissal_restrictions or self.dismissal_restrictions,
        )

    def body(self) -> dict[str, Any]:
        """The PUT …/branches/{branch}/protection body. Checks go in `checks`, never next
        to the closing-down `contexts`: GitHub refuses a body with both (422)."""
        reviews: dict[str, Any] | None = None
        if self.required_reviews is not None:
            if not 0 <= self.required_reviews <= 6:
                raise ForgeError(
                    f"required_reviews must be 0 to 6 (GitHub's range), not "
                    f"{self.required_reviews}."
                )
            reviews = {f: True for f in _REVIEW_FLAGS if f in self.review_flags}
            reviews["dismiss_stale_reviews"] = "dismiss_stale_reviews" in self.review_flags
            reviews["required_approving_review_count"] = self.required_reviews
            if self.dismissal_restrictions is not None:
                reviews["dismissal_restrictions"] = self.dismissal_restrictions
        body: dict[str, Any] = {
            "required_status_checks": (
                {"strict": self.strict, "checks": [{"context": c} for c in self.required_checks]}
                if self.required_checks
                else None
            ),
            "enforce_admins": self.enforce_admins,
            "required_pull_request_reviews": reviews,
            "restrictions": self.restrictions,
        }
        body.update({flag: True for flag in STRICT_FLAGS if flag in self.flags})
        return body
