"""DNS message helpers (EDNS(0) padding for DoT queries)."""

from .padding import pad_to_block, pad_to_length

__all__ = ["pad_to_block", "pad_to_length"]
