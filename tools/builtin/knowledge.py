"""`search_knowledge_base_for_guidelines`: ranked platform guidelines the agent can cite."""

from __future__ import annotations

from functools import lru_cache

from pydantic import BaseModel, Field

from tools.knowledge.index import KnowledgeBase
from tools.spec import ToolContext, ToolSpec

REPO_GUIDELINES = "docs/guidelines/"


class SearchInput(BaseModel):
    query: str = Field(
        max_length=500, description="The question or keywords, e.g. 'readiness probe path'"
    )
    k: int = Field(3, ge=1, le=10, description="How many sections to return")


class GuidelineHit(BaseModel):
    source: str = Field(description="Cite as is: path#heading-anchor")
    heading: str
    score: float
    snippet: str


class SearchOutput(BaseModel):
    query: str
    hits: list[GuidelineHit]
    summary: str


@lru_cache(maxsize=1)
def _bundled() -> KnowledgeBase:
    return KnowledgeBase()


def knowledge_base_for(files: dict[str, str]) -> KnowledgeBase:
    """The bundled guidelines plus any `docs/guidelines/**/*.md` in the session's workspace.
    Other repository guidelines reach the index only through `KnowledgeBase(extra_docs=...)`:
    the Forge cannot list a folder, so fetching them is the caller's job."""
    extra = {
        path: text
        for path, text in files.items()
        if path.startswith(REPO_GUIDELINES) and path.endswith(".md")
    }
    return KnowledgeBase(extra_docs=extra) if extra else _bundled()


def search_knowledge_base_for_guidelines(args: SearchInput, ctx: ToolContext) -> SearchOutput:
    """Search the platform guidelines; each hit names the file and heading to cite."""
    hits = knowledge_base_for(ctx.files).search(args.query, k=args.k)
    results = [
        GuidelineHit(source=h.citation, heading=h.heading, score=h.score, snippet=h.snippet)
        for h in hits
    ]
    if results:
        cited = ", ".join(r.source for r in results)
        summary = f"{len(results)} guideline section(s) match, best first: {cited}."
    else:
        summary = (
            "No guideline matches this question. Try other words (for example 'memory limit' "
            "or 'who gets paged'), or ask the platform team."
        )
    return SearchOutput(query=args.query, hits=results, summary=summary)


TOOLS = [
    ToolSpec(
        name="search_knowledge_base_for_guidelines",
        description=(
            "Search the platform guidelines (naming, resources, probes, SLOs and alerting, "
            "secrets, on-call, CI/CD, network policies, and the repository's docs/guidelines). "
            "Returns sections best first; cite each by its `source`."
        ),
        input_model=SearchInput,
        output_model=SearchOutput,
        func=search_knowledge_base_for_guidelines,
        aliases=["search_guidelines", "search_knowledge_base"],
    ),
]
