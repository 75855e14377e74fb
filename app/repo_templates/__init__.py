"""Files `idp-copilot init-repo` adds to a repository. `new-service.yml` is the same file as
this repository's own `.github/ISSUE_TEMPLATE/new-service.yml` (tests/test_init_repo.py keeps
them equal); its headings are what `app.grammar.commands.parse_issue_form` reads."""
