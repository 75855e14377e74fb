"""The domain at the bottom: the records every layer shares and nothing else.

The session model, the todo and its tasks (and the hidden marker that finds the todo
comment), the service request and the approval digest. Pure data and pure functions: no
Redis, no HTTP, no imports from anything above except the shared helpers.
"""
