"""Export stage: one merged tuning spec + flags, confirmed end to end."""
from ._confirm import Confirmation, confirm, write_exports

__all__ = ["Confirmation", "confirm", "write_exports"]
