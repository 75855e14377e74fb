"""Shared helpers for untrusted text below every layer: sanitizing what GitHub users wrote,
neutralizing mentions and hidden HTML, redacting secrets before text leaves the process.
The linear-time matching primitives live beside it in `app/untrusted.py`.
"""
