"""The one error every forge raises: its own module so the forge's helpers (protection,
throttle) can raise it without importing the `Forge` protocol that names them."""


class ForgeError(Exception):
    """A forge call failed after its retries; the message is safe to show to users."""
