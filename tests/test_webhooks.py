"""Signature check and routing: which deliveries become work, and what the job is told."""

from __future__ import annotations

from app.grammar.commands import Trigger
from app.webhooks import Ignored, route, verify_signature
from tests import payloads
from tests.conftest import WEBHOOK_SECRET

DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def routed(event: str, payload: dict) -> Trigger:
    result = route(event, DELIVERY, payload)
    assert isinstance(result, Trigger), result
    return result


def ignored(event: str, payload: dict) -> str:
    result = route(event, DELIVERY, payload)
    assert isinstance(result, Ignored), result
    return result.reason


# -- signatures ----------------------------------------------------------------------------


def test_signature_made_with_the_secret_verifies():
    body = b'{"zen": "hi"}'
    assert verify_signature([WEBHOOK_SECRET.encode()], body, payloads.sign(body, WEBHOOK_SECRET))


def test_wrong_or_missing_signature_does_not_verify():
    body = b'{"zen": "hi"}'
    secrets = [WEBHOOK_SECRET.encode()]
    assert not verify_signature(secrets, body, payloads.sign(body, "other"))
    assert not verify_signature(secrets, body + b" ", payloads.sign(body, WEBHOOK_SECRET))
    assert not verify_signature(secrets, body, None)
    assert not verify_signature(secrets, body, "")
    sha1_style = payloads.sign(body, WEBHOOK_SECRET).replace("sha256=", "sha1=")
    assert not verify_signature(secrets, body, sha1_style)


def test_any_configured_secret_verifies_during_a_rotation():
    body = b"{}"
    secrets = [b"new-secret", WEBHOOK_SECRET.encode()]
    assert verify_signature(secrets, body, payloads.sign(body, WEBHOOK_SECRET))
    assert verify_signature(secrets, body, payloads.sign(body, "new-secret"))
    assert not verify_signature([], body, payloads.sign(body, WEBHOOK_SECRET))


# -- issue comments ------------------------------------------------------------------------


def test_comment_on_an_issue_becomes_a_trigger_with_its_origin():
    payload = payloads.issue_comment("/idp create-service billing --lang go", number=12)
    trigger = routed("issue_comment", payload)
    assert trigger.delivery_id == DELIVERY
    assert (trigger.event, trigger.action) == ("issue_comment", "created")
    assert trigger.repo == payloads.REPO
    assert trigger.installation_id == payloads.INSTALLATION_ID
    assert trigger.number == 12
    assert trigger.is_pull_request is False
    assert trigger.sender == "octocat"
    assert trigger.comment_id == payload["comment"]["id"]
    assert trigger.title == payload["issue"]["title"]
    assert (trigger.state, trigger.locked) == ("open", False)
    assert [c.verb for c in trigger.commands] == ["create-service"]
    assert trigger.commands[0].service.language == "go"
    assert trigger.errors == []


def test_comment_on_a_pull_request_is_marked_as_such():
    trigger = routed("issue_comment", payloads.issue_comment("/idp plan", on_pull_request=True))
    assert trigger.is_pull_request is True
    assert [c.verb for c in trigger.commands] == ["plan"]


def test_bad_command_lines_reach_the_job_as_errors_to_answer():
    body = "/idp set replicas=3\n/idp create-service Bad_Name"
    trigger = routed("issue_comment", payloads.issue_comment(body))
    assert [c.verb for c in trigger.commands] == ["set"]
    assert len(trigger.errors) == 1
    assert "Try `bad-name`" in trigger.errors[0]


def test_comment_without_an_idp_line_is_ignored():
    assert "no /idp command" in ignored("issue_comment", payloads.issue_comment("LGTM"))


def test_comment_that_only_quotes_a_command_is_ignored():
    payload = payloads.issue_comment("> /idp apply\n\nAgreed")
    assert "no /idp command" in ignored("issue_comment", payload)


def test_bot_sender_is_ignored_so_the_app_never_answers_itself():
    payload = payloads.issue_comment("/idp plan", sender="idp-copilot[bot]", sender_type="Bot")
    assert ignored("issue_comment", payload) == "sender is a bot"


def test_comment_on_a_closed_issue_is_ignored():
    payload = payloads.issue_comment("/idp plan", state="closed")
    assert ignored("issue_comment", payload) == "issue is closed"


def test_comment_on_a_locked_issue_is_ignored():
    payload = payloads.issue_comment("/idp plan", locked=True)
    assert ignored("issue_comment", payload) == "issue is locked"


def test_deploy_on_a_merged_pull_request_still_runs_but_plan_does_not():
    body = "/idp deploy staging\n/idp plan"
    payload = payloads.issue_comment(body, on_pull_request=True, state="closed", merged=True)
    trigger = routed("issue_comment", payload)
    assert [c.verb for c in trigger.commands] == ["deploy"]
    assert trigger.state == "closed"


def test_comment_on_a_closed_unmerged_pull_request_is_ignored():
    payload = payloads.issue_comment("/idp deploy staging", on_pull_request=True, state="closed")
    assert ignored("issue_comment", payload) == "pull request is closed"


def test_edited_comment_is_not_routed():
    payload = payloads.issue_comment("/idp apply")
    payload["action"] = "edited"
    assert ignored("issue_comment", payload) == "issue_comment.edited is not handled"


# -- issues --------------------------------------------------------------------------------


def test_opened_issue_form_becomes_create_service():
    trigger = routed("issues", payloads.issues_opened(payloads.FORM_BODY))
    assert (trigger.event, trigger.action) == ("issues", "opened")
    assert trigger.comment_id is None
    [command] = trigger.commands
    assert command.verb == "create-service"
    assert command.service.name == "payments-api"
    assert command.service.language == "python"


def test_labelled_free_text_issue_becomes_a_request():
    text = "We need a Go worker that reads the orders topic."
    payload = payloads.issues_opened(text, labels=["idp:new-service"])
    [command] = routed("issues", payload).commands
    assert (command.verb, command.text) == ("request", text)


def test_opened_form_with_a_bad_name_reaches_the_job_as_an_error():
    body = payloads.FORM_BODY.replace("payments-api", "Payments API")
    trigger = routed("issues", payloads.issues_opened(body))
    assert trigger.commands == []
    assert "`payments-api`" in trigger.errors[0]


def test_opened_ordinary_issue_is_ignored():
    payload = payloads.issues_opened("The build is red", labels=["bug"])
    assert "neither labelled" in ignored("issues", payload)


def test_adding_the_new_service_label_starts_the_request():
    trigger = routed("issues", payloads.issues_labeled("idp:new-service"))
    assert trigger.action == "labeled"
    assert [c.verb for c in trigger.commands] == ["create-service"]


def test_adding_another_label_is_ignored():
    assert "label is not" in ignored("issues", payloads.issues_labeled("bug"))


def test_labelling_a_closed_issue_is_ignored():
    payload = payloads.issues_labeled(state="closed")
    assert ignored("issues", payload) == "issue is closed"


def test_issue_opened_by_a_bot_is_ignored():
    payload = payloads.issues_opened(sender="dependabot[bot]", sender_type="Bot")
    assert ignored("issues", payload) == "sender is a bot"


# -- other deliveries ----------------------------------------------------------------------


def test_ping_answers_pong():
    assert ignored("ping", payloads.ping()) == "pong"


def test_other_events_are_ignored_with_their_name():
    assert ignored("push", {"ref": "refs/heads/main"}) == "push event"
    assert ignored("pull_request", {"action": "opened"}) == "pull_request.opened is not handled"


def test_payload_missing_what_the_router_needs_is_ignored_not_crashed():
    payload = payloads.issue_comment("/idp plan")
    del payload["issue"]["number"]
    assert "issue.number" in ignored("issue_comment", payload)


def test_unknown_payload_fields_are_tolerated():
    payload = payloads.issue_comment("/idp status")
    payload["issue"]["sub_issues_summary"] = {"total": 0}
    payload["brand_new_field"] = [1, 2, 3]
    assert routed("issue_comment", payload).commands[0].verb == "status"
