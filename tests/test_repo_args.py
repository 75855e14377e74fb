"""`/idp create-repo` in the grammar: NAME or OWNER/NAME and `--from-service`, each bad
shape refused with the fix; echoed text is escaped."""

from __future__ import annotations

import pytest

from app.grammar.commands import HELP_TEXT, USER_VERBS, CommandError, parse_comment, parse_line


def test_a_name_and_a_service_become_one_command():
    command = parse_line("/idp create-repo billing-api --from-service payments-api")
    assert (command.verb, command.text, command.values) == (
        "create-repo",
        "billing-api",
        {"from_service": "payments-api"},
    )
    assert parse_line("/idp Create-Repo acme/billing-api --from-service=x1").text == (
        "acme/billing-api"
    )
    assert parse_line("/idp create-repo docs-site").values == {}


def test_create_repo_is_in_the_help_and_the_verbs():
    assert "create-repo" in USER_VERBS
    assert "`/idp create-repo NAME [--from-service SERVICE]`" in HELP_TEXT


@pytest.mark.parametrize(
    ("line", "said"),
    [
        ("/idp create-repo", "takes one repository name. Usage: `/idp create-repo NAME"),
        ("/idp create-repo a b", "takes one repository name; got `a b`"),
        ("/idp create-repo Billing_API", "not a valid repository name: a repository name"),
        ("/idp create-repo Billing_API", "Try `billing-api`."),
        ("/idp create-repo x --from=y", "Did you mean `--from-service`?"),
        ("/idp create-repo x --from-service", "`--from-service` needs a value."),
        ("/idp create-repo x --from-service Pay_API", "not a valid service name"),
        ("/idp create-repo -acme-/x", "is not a GitHub account name"),
        ("/idp create-repo a/b/c", "is not a GitHub account name"),
        ("/idp create-repo 'x", "could not be read"),
    ],
)
def test_bad_shapes_are_refused_with_the_fix(line, said):
    with pytest.raises(CommandError) as refused:
        parse_line(line)
    assert said in refused.value.message


def test_echoed_text_cannot_mention_anyone():
    _, errors = parse_comment("/idp create-repo @everyone/x")
    (error,) = errors
    assert "everyone` is not a GitHub account name" in error.message
    assert "@everyone" not in error.message  # a zero-width space keeps GitHub from pinging
