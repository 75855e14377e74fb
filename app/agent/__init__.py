"""The agent engine: the step loop (`loop.py`) with its rules and model strategies, planning
(`planner.py`, `ordering.py`, `backstop.py`), approval gates, guards, progress, the publisher
of the todo comment, the review agent, and the model providers (`providers/`). It talks to a
`Forge` and to tools; it never imports githubkit or the command layer."""
