"""The one exception type edgewise raises."""

__all__ = ["EdgewiseError"]


class EdgewiseError(ValueError):
    """Raised for bad input or an unsupported model; the message says what to do."""
