"""The branch protection a repository's config asks for on the repositories the App creates
(`branch_protection:` in `.github/idp-copilot.yml`, the organization's default once the org's
`.github` repository provides it). The App never protects a created branch less than this;
`BranchRules.stricter` keeps whatever the branch already had on top."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.github.protection import BranchRules


class BranchProtectionSettings(BaseModel):
    """What the default branch of a repository created by `/idp create-repo` gets, at least."""

    model_config = ConfigDict(extra="forbid")

    required_reviews: int = Field(
        1, ge=0, le=6, description="Approving reviews a pull request needs (GitHub: 0 to 6)"
    )
    required_checks: list[str] | None = Field(
        None,
        max_length=50,
        description="Status checks that must pass; None: the jobs of the service's CI workflow",
    )
    enforce_admins: bool = Field(True, description="Hold administrators to the rules too")
    dismiss_stale_reviews: bool = Field(True, description="A new push dismisses approvals")
    require_code_owner_reviews: bool = False
    require_last_push_approval: bool = False
    required_linear_history: bool = False
    required_conversation_resolution: bool = False

    @field_validator("required_checks")
    @classmethod
    def _checks(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [" ".join(str(v).split()) for v in value]
        if any(not n or len(n) > 255 for n in names):
            raise ValueError("each check name is 1 to 255 characters (a job's name, e.g. Test)")
        return list(dict.fromkeys(names))

    def rules(self, default_checks: list[str]) -> BranchRules:
        """These settings as the rules `protect_branch` writes; `default_checks` stand in
        for `required_checks` when the config leaves it out."""
        checks = self.required_checks if self.required_checks is not None else default_checks
        names = tuple(dict.fromkeys(c.strip() for c in checks if c.strip()))
        review_flags = {
            flag
            for flag in (
                "dismiss_stale_reviews",
                "require_code_owner_reviews",
                "require_last_push_approval",
            )
            if getattr(self, flag)
        }
        flags = {
            flag
            for flag in ("required_linear_history", "required_conversation_resolution")
            if getattr(self, flag)
        }
        return BranchRules(
            required_reviews=self.required_reviews,
            required_checks=names,
            strict=bool(names),
            enforce_admins=self.enforce_admins,
            review_flags=frozenset(review_flags),
            flags=frozenset(flags),
        )
