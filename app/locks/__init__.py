"""Locks across sessions and repositories (the per-session run lock is app/state.py's)."""
