"""The one exception type edgewise raises."""

import difflib

__all__ = ["EdgewiseError", "EdgewiseWarning", "unknown_name"]


class EdgewiseError(ValueError):
    """Raised for bad input or an unsupported model; the message says what to do."""


class EdgewiseWarning(UserWarning):
    """Something was set aside and the work went on (e.g. a damaged cache file that is recomputed)."""


def unknown_name(kind: str, plural: str, name, valid) -> EdgewiseError:
    """The error for a name not in a registry: the closest valid name, then all of them."""
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    return EdgewiseError(f"unknown {kind} {name!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                         + f" Valid {plural}: {', '.join(valid)}")
