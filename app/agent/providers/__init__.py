"""The chat models behind one `ChatModel` protocol: rules, OpenAI, Anthropic, and the
budget that wraps them (`budgeted.py`); `factory.py` picks one from the settings."""
