"""The `Forge` protocol (`forge.py`, errors in `errors.py`) and its two forges:
`GitHubForge` (githubkit; its parts `github_*.py` build on `GitHubClient`) and
`LocalForge` (a local git repository and files; its parts `local_*.py` build on
`LocalFiles`). App authentication, installation tokens, the write throttle, permissions and
branch protection live beside them. Nothing here imports the agent."""
