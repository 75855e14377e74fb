"""The `/idp` grammar and the issue-form parser, as a commenter meets them."""

from __future__ import annotations

import pytest

from app.domain.service import NAME_RULE
from app.grammar.commands import (
    HELP_TEXT,
    SET_KEYS,
    USER_VERBS,
    CommandError,
    escape_user_text,
    is_issue_form,
    parse_comment,
    parse_issue_form,
    parse_line,
)
from tests.payloads import FORM_BODY


def only_command(body: str):
    commands, errors = parse_comment(body)
    assert errors == [], [e.message for e in errors]
    assert len(commands) == 1
    return commands[0]


def only_error(body: str) -> str:
    commands, errors = parse_comment(body)
    assert commands == []
    assert len(errors) == 1
    return errors[0].message


# -- every verb ----------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["help", "plan", "apply", "status", "retry", "cancel"])
def test_verbs_without_arguments_parse(verb):
    assert only_command(f"/idp {verb}").verb == verb


def test_create_service_reads_name_and_every_option():
    command = only_command(
        "/idp create-service payments-api --lang go --type=worker --team checkout "
        "--port 9000 --replicas=4"
    )
    service = command.service
    assert command.verb == "create-service"
    assert (service.name, service.language, service.type) == ("payments-api", "go", "worker")
    assert (service.team, service.port, service.replicas) == ("checkout", 9000, 4)


def test_create_service_lower_cases_the_team_slug():
    assert only_command("/idp create-service billing --team Checkout").service.team == "checkout"


def test_create_service_defaults_leave_the_language_open():
    service = only_command("/idp create-service billing").service
    assert service.language is None
    assert service.type == "api"


def test_deploy_staging_parses_to_the_environment():
    command = only_command("/idp deploy staging")
    assert (command.verb, command.environment) == ("deploy", "staging")


@pytest.mark.parametrize("verb", ["feedback", "answer", "ask"])
def test_text_verbs_keep_the_text_as_typed(verb):
    command = only_command(f'/idp {verb} it\'s "great" -- use go')
    assert command.verb == verb
    assert command.text == 'it\'s "great" -- use go'


def test_set_maps_friendly_spellings_to_canonical_keys():
    command = only_command(
        "/idp set replicas=3 lang=Go cpu.request=250m memory.limit=1Gi "
        "ingress.host=pay.example.com probe.liveness=/live max-replicas=10"
    )
    assert command.verb == "set"
    assert command.values == {
        "replicas": "3",
        "language": "go",
        "cpu_request": "250m",
        "memory_limit": "1Gi",
        "ingress_host": "pay.example.com",
        "liveness_path": "/live",
        "max_replicas": "10",
    }


def test_set_accepts_every_canonical_key():
    good = {
        "replicas": "2",
        "max_replicas": "8",
        "port": "8081",
        "cpu_request": "100m",
        "cpu_limit": "1",
        "memory_request": "128Mi",
        "memory_limit": "512Mi",
        "language": "java",
        "type": "web",
        "team": "payments",
        "ingress_host": "shop.example.com",
        "liveness_path": "/healthz",
        "readiness_path": "/ready",
        "availability_slo": "99.5",
        "latency_p99_ms": "250",
    }
    assert set(good) == set(SET_KEYS)
    line = "/idp set " + " ".join(f"{k}={v}" for k, v in good.items())
    assert only_command(line).values == good


def test_verb_is_case_insensitive_and_may_be_indented():
    assert only_command("   /IDP Plan").verb == "plan"


def test_several_commands_one_per_line_amid_prose():
    body = "Thanks!\n/idp set replicas=3\nSome more words\n/idp plan\n/idpx plan\n"
    commands, errors = parse_comment(body)
    assert [c.verb for c in commands] == ["set", "plan"]
    assert errors == []


def test_bare_idp_means_help_and_help_text_covers_every_verb():
    assert only_command("/idp").verb == "help"
    for verb in USER_VERBS:
        assert f"/idp {verb}" in HELP_TEXT
    assert "`lang`→`language`" in HELP_TEXT
    assert r"api\|worker\|web" in HELP_TEXT  # pipes escaped so the table renders


# -- ignored lines -------------------------------------------------------------------------


def test_lines_in_code_fences_are_not_commands():
    body = "Try this:\n```\n/idp apply\n```\n~~~~ text\n/idp cancel\n~~~~\n/idp status"
    assert only_command(body).verb == "status"


def test_quoted_commands_are_not_run_again():
    body = "> /idp apply\n>> /idp cancel\nI agree with the above."
    assert parse_comment(body) == ([], [])


def test_commands_hidden_in_html_comments_are_not_run():
    body = "Looks good <!--\n/idp apply\n-->\n"
    assert parse_comment(body) == ([], [])


def test_a_comment_without_commands_gives_nothing():
    assert parse_comment("LGTM, ship it") == ([], [])


# -- bad arguments say the fix -------------------------------------------------------------


def test_unknown_verb_lists_verbs_and_suggests_the_closest():
    message = only_error("/idp deplyo staging")
    assert "Did you mean `/idp deploy`?" in message
    assert "create-service" in message and "feedback" in message


def test_invalid_service_name_states_the_rule_and_a_fixed_name():
    message = only_error("/idp create-service Payments_API")
    assert NAME_RULE in message
    assert "`payments-api`" in message


def test_unknown_option_lists_the_valid_options():
    message = only_error("/idp create-service billing --langauge go")
    assert "--langauge" in message
    assert "Did you mean `--language`?" in message
    assert "--lang, --type, --team, --port, --replicas" in message


def test_any_language_word_passes_the_grammar_for_the_template_set_to_judge():
    (command,), errors = parse_comment("/idp create-service billing --lang Rust")
    assert errors == [] and command.service.language == "rust"


def test_a_language_that_is_not_a_word_lists_the_built_in_ones():
    message = only_error("/idp create-service billing --lang c++")
    assert "must be a language name such as python, go, node, java" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("/idp create-service billing --port 80", "from 1024 to 65535"),
        ("/idp create-service billing --replicas many", "from 1 to 50"),
        ("/idp set replicas=0", "from 1 to 50"),
        ("/idp set availability_slo=100", "above 50 and below 100"),
    ],
)
def test_bad_numbers_state_the_range(line, expected):
    assert expected in only_error(line)


@pytest.mark.parametrize("verb", ["feedback", "answer", "ask"])
def test_missing_text_shows_the_usage_line(verb):
    assert f"Usage: `/idp {verb} " in only_error(f"/idp {verb}")


def test_create_service_without_a_name_shows_the_usage_line():
    assert "Usage: `/idp create-service NAME" in only_error("/idp create-service --lang go")


def test_deploy_to_production_is_refused_with_the_reason():
    message = only_error("/idp deploy production")
    assert "Only `staging`" in message and "/idp deploy staging" in message


def test_unclosed_quote_is_explained():
    assert "close the quote" in only_error('/idp create-service "billing')


def test_plan_with_arguments_says_it_takes_none():
    assert "takes no arguments" in only_error("/idp plan now please")


def test_set_lower_cases_the_team_slug():
    assert only_command("/idp set owner=Payments").values == {"team": "payments"}


def test_set_unknown_key_suggests_a_known_one():
    message = only_error("/idp set replica=3")
    assert "Did you mean `replicas`?" in message
    assert "max_replicas" in message


@pytest.mark.parametrize(
    ("pair", "key"),
    [
        ("cpu.limit=lots", "cpu_limit"),
        ("memory.request='12 GB'", "memory_request"),
        ("ingress.host=Not_A_Host", "ingress_host"),
        ("probe.readiness=healthz", "readiness_path"),
        ("team=Payments!", "team"),
        ("type=lambda", "type"),
    ],
)
def test_set_rejects_bad_values_naming_the_key(pair, key):
    message = only_error(f"/idp set {pair}")
    assert f"`{key}" in message


def test_set_without_pairs_shows_the_form():
    assert "KEY=VALUE" in only_error("/idp set replicas")


def test_a_bad_line_does_not_hide_the_good_ones():
    commands, errors = parse_comment("/idp plan\n/idp sett replicas=2")
    assert [c.verb for c in commands] == ["plan"]
    assert errors[0].line == "/idp sett replicas=2"


def test_echoed_user_text_cannot_mention_or_break_markdown():
    message = only_error("/idp create-service @org/team`</details>`")
    assert "@org" not in message
    assert "@\u200borg" in message
    assert message.count("`") % 2 == 0


def test_escape_user_text_makes_one_short_code_span():
    escaped = escape_user_text("hi @alice\u202e\n```\n" + "x" * 200)
    assert escaped.startswith("`") and escaped.endswith("`")
    assert escaped.count("`") == 2
    assert "\n" not in escaped
    assert "@\u200balice " in escaped  # the bidi override is gone
    assert len(escaped) < 100


def test_parse_line_refuses_a_non_command():
    with pytest.raises(CommandError, match="starts with `/idp`"):
        parse_line("please plan")


# -- issue forms ---------------------------------------------------------------------------


def test_issue_form_parses_capitalised_dropdowns_and_no_response():
    service = parse_issue_form(FORM_BODY)
    assert service.name == "payments-api"
    assert service.language == "python"
    assert service.type == "api"
    assert service.team == "checkout"
    assert service.port == 8080  # "_No response_" keeps the default
    assert service.replicas == 3
    assert service.description == "Takes card payments for the web shop."


def test_issue_form_with_crlf_and_no_language_leaves_it_open():
    body = FORM_BODY.replace("Python", "_No response_").replace("\n", "\r\n")
    service = parse_issue_form(body)
    assert service.language is None
    assert service.name == "payments-api"


def test_issue_form_maps_node_js_to_node():
    assert parse_issue_form(FORM_BODY.replace("Python", "Node.js")).language == "node"


def test_issue_form_without_a_name_says_what_to_fill_in():
    body = FORM_BODY.replace("payments-api", "_No response_")
    with pytest.raises(CommandError, match=r"\*\*Service name\*\*"):
        parse_issue_form(body)


def test_issue_form_with_an_invalid_name_suggests_one():
    body = FORM_BODY.replace("payments-api", "Payments API")
    with pytest.raises(CommandError) as caught:
        parse_issue_form(body)
    assert NAME_RULE in caught.value.message
    assert "`payments-api`" in caught.value.message


def test_issue_form_with_a_bad_port_names_the_field():
    body = FORM_BODY.replace("### Port\n\n_No response_", "### Port\n\neighty")
    with pytest.raises(CommandError, match=r"\*\*Port\*\* must be a whole number from 1024"):
        parse_issue_form(body)


def test_is_issue_form_recognises_only_the_form():
    assert is_issue_form(FORM_BODY)
    assert is_issue_form(FORM_BODY.replace("### Service name", "### service NAME"))
    assert not is_issue_form("Please make me a payments service in Go.")
    assert not is_issue_form(None)


def test_upgrade_takes_an_optional_service_name():
    assert parse_line("/idp upgrade").text is None
    assert parse_line("/idp upgrade ledger").text == "ledger"
    with pytest.raises(CommandError, match="takes at most one service name"):
        parse_line("/idp upgrade ledger billing")
    with pytest.raises(CommandError, match=NAME_RULE):
        parse_line("/idp upgrade Ledger_API")
