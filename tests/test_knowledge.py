"""The knowledge base: guideline questions find the right section, repo docs compete fairly."""

from __future__ import annotations

import pytest

from tools.builtin.knowledge import TOOLS, SearchInput, search_knowledge_base_for_guidelines
from tools.knowledge.index import KnowledgeBase, anchor, bundled_docs, split_sections, tokenize
from tools.spec import ToolContext, to_anthropic_tool, to_openai_tool

GUIDE = "idp-copilot/guidelines/"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return KnowledgeBase()


@pytest.mark.parametrize(
    ("query", "expected_file"),
    [
        ("how much memory should my container request", "resources.md"),
        ("readiness probe path", "probes.md"),
        ("error budget burn rate alert", "slos-and-alerting.md"),
        ("where do I store database passwords", "secrets.md"),
        ("who gets paged", "on-call.md"),
        ("pin third-party actions to a commit sha", "ci-cd.md"),
        ("allow egress to DNS", "network-policies.md"),
        ("what should I name my service", "naming.md"),
    ],
)
def test_a_guideline_question_finds_its_topic_first(kb, query, expected_file):
    hits = kb.search(query)

    assert hits, f"no hit for {query!r}"
    assert hits[0].source == GUIDE + expected_file


def test_hits_name_the_heading_that_answers(kb):
    best = kb.search("who gets paged", k=1)[0]

    assert best.heading == "Who gets paged"
    assert best.citation == f"{GUIDE}on-call.md#who-gets-paged"
    assert "primary on-call engineer" in best.snippet


def test_results_are_ranked_and_limited_to_k(kb):
    hits = kb.search("memory limit container", k=2)

    assert len(hits) == 2
    assert hits[0].score >= hits[1].score > 0


@pytest.mark.parametrize("query", ["", "   ", "xyzzy qwertyuiop", "the of and", "?!#@"])
def test_empty_or_garbage_queries_give_no_hits(kb, query):
    assert kb.search(query) == []


def test_a_repository_guideline_outranks_bundled_text_when_it_matches_better():
    repo_doc = (
        "# Java services\n\n"
        "## JVM memory settings\n\n"
        "Our Java services request 1Gi of memory and set MaxRAMPercentage to 60, because the "
        "payment SDK allocates large off-heap buffers.\n"
    )
    kb = KnowledgeBase(extra_docs={"docs/guidelines/java.md": repo_doc})

    hits = kb.search("jvm memory settings for java services")

    assert hits[0].citation == "docs/guidelines/java.md#jvm-memory-settings"
    assert any(h.source == GUIDE + "resources.md" for h in hits[1:])


def test_bundled_guidelines_still_win_on_their_own_topic_next_to_repo_docs():
    kb = KnowledgeBase(extra_docs={"docs/guidelines/java.md": "# Java\n\nUse Java 21.\n"})

    assert kb.search("readiness probe")[0].source == GUIDE + "probes.md"


def test_every_bundled_guideline_has_several_headed_sections():
    docs = bundled_docs()

    assert {name.removeprefix(GUIDE) for name in docs} >= {
        "naming.md",
        "resources.md",
        "probes.md",
        "slos-and-alerting.md",
        "secrets.md",
        "on-call.md",
        "ci-cd.md",
        "network-policies.md",
    }
    for path, text in docs.items():
        headed = [s for s in split_sections(path, text) if s.heading != s.title]
        assert len(headed) >= 4, path


def test_headings_inside_code_fences_do_not_split_a_section():
    text = "# Doc\n\n## Real heading\n\n```sh\n# a shell comment\necho hi\n```\nafter\n"

    sections = split_sections("docs/guidelines/x.md", text)

    assert [s.heading for s in sections] == ["Real heading"]
    assert "# a shell comment" in sections[0].body


def test_tokens_drop_stop_words_and_fold_plurals():
    assert tokenize("Where are the Probes, policies and passes?") == ["probe", "policy", "pass"]
    assert anchor("CI/CD: pinned actions") == "cicd-pinned-actions"


def test_the_tool_returns_citable_sources_and_a_summary(settings):
    ctx = ToolContext(settings=settings)

    out = search_knowledge_base_for_guidelines(
        SearchInput(query="where do I store database passwords", k=2), ctx
    )

    assert len(out.hits) == 2
    assert out.hits[0].source == f"{GUIDE}secrets.md#database-passwords"
    assert out.hits[0].source in out.summary


def test_the_tool_searches_repo_guidelines_in_the_session_workspace(settings):
    files = {
        "docs/guidelines/queues/kafka.md": "# Kafka\n\n## Consumer groups\n\nName consumer "
        "groups after the service, e.g. payments-api.\n",
        "services/payments-api/README.md": "# Consumer groups everywhere\n\nNot a guideline.\n",
    }
    ctx = ToolContext(settings=settings, files=files)

    out = search_knowledge_base_for_guidelines(SearchInput(query="kafka consumer groups"), ctx)

    assert out.hits[0].source == "docs/guidelines/queues/kafka.md#consumer-groups"
    assert all(not h.source.startswith("services/") for h in out.hits)


def test_the_tool_answers_an_unmatched_query_with_a_hint_not_an_error(settings):
    out = search_knowledge_base_for_guidelines(
        SearchInput(query="zzqx"), ToolContext(settings=settings)
    )

    assert out.hits == []
    assert out.summary.startswith("No guideline matches")


def test_the_tool_schema_exports_to_both_providers():
    (spec,) = TOOLS
    openai = to_openai_tool(spec)
    anthropic = to_anthropic_tool(spec)

    assert openai["function"]["name"] == "search_knowledge_base_for_guidelines"
    assert openai["function"]["parameters"]["required"] == ["query"]
    assert anthropic["input_schema"]["properties"]["k"]["maximum"] == 10
    assert spec.side_effect == "none" and not spec.requires_approval
