"""The command layer: what each `/idp` verb and review event does.

`handlers.handle_trigger` authorizes a `Trigger` and dispatches each `Command` to its verb
(`verbs`, `pr_commands`, `review`, `revision`, `cancel`); `context.JobContext` is what every
verb receives. Verbs drive the agent engine (`app/agent/`) and talk to a `Forge`; they never
touch RQ beyond `jobs.queue` (cancel finds queued jobs there). A new verb goes here.
"""
