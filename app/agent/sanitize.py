"""Untrusted text on its way to a model, and secrets on their way out: the agent's names for
what lives below every layer, in app/untrusted.py (cleaning and quoting, linear time) and
app/redaction.py (one redaction for every sink)."""

from app.redaction import CREDENTIAL_RE as CREDENTIAL_RE
from app.redaction import REDACTED as REDACTED
from app.redaction import redact as redact
from app.untrusted import clean_untrusted as clean_untrusted
from app.untrusted import inline_markdown as inline_markdown
from app.untrusted import neutralize_mentions as neutralize_mentions
from app.untrusted import quote_untrusted as quote_untrusted
