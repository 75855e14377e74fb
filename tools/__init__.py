"""What the agent can call: `ToolSpec` and the registry (`spec.py`, `registry.py`: aliases,
validation, schema export), the built-in tools (`builtin/`), the renderers and their
templates (`render*.py`, `templates/`), validation (`validate*.py`), the cluster
(`cluster.py`, `deploy.py`, `staging.py`) and the knowledge base (`knowledge/`).

Tools import the forge, the domain and the shared helpers, never the agent or the command
layer; a tool that needs the session gets it through its `ToolContext`."""
