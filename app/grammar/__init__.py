"""The `/idp` grammar: untrusted comment and issue-form text → typed `Command` and `Trigger`.

Pure parsing (linear-time, size-bounded), no I/O. It sits low so the web edge (routing), the
command layer (replies) and the queue (`Trigger`) can all read it. A new verb's syntax goes
in `commands.py`, its value rules in `values.py`, the issue form in `issue_form.py`.
"""
