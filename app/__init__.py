"""IDP Copilot, the GitHub App. Where a change goes, from the edge down (each layer imports
only the ones below it; pyproject.toml's import-linter contracts check it):

- edge: `web.py`, `webhooks.py` (signature, payloads → `Trigger`), `api/`, `console/`,
  `server.py`, and the CLI (`cli.py` and its subcommands `run`, `demo`, `register`,
  `init_repo`, `redeliver`);
- `handling/`: the command layer, what each `/idp` verb and review does;
- `agent/`: the agent engine (plan, step, publish) and the model providers;
- `tools/` (beside `app/`): what the agent can call;
- `github/` (the `Forge`), `state.py` (the session store), `events.py`, `feedback.py`,
  `audit.py`, `budgets.py`, `session_line.py`, `telemetry.py`;
- `grammar/`: the `/idp` grammar and the issue form → typed `Command`s;
- `domain/`: the session, todo, task, service request and approval digest;
  `text/`, `untrusted.py`, `times.py`, `config.py`, `logs.py`, `tracing.py`: shared helpers.
"""
