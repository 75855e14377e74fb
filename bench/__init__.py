"""Benchmarks of IDP Copilot; each module is one command (`python -m bench.<name>`)."""
