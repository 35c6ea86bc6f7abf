"""Names, wire labels and policy keys (SPEC §5.4, §6).

A rule name is converted to wire labels exactly once, here:

* the trailing dot is stripped; the root name (empty) is rejected;
* labels are split at ``.`` (and the IDNA label separators U+3002, U+FF0E, U+FF61);
* an ASCII label is only lower-cased (``_dmarc`` and ``a--b`` stay as they are);
* a non-ASCII label is mapped by UTS #46 (non-transitional, STD3 rules off) with the ``idna``
  package's mapping table, checked per RFC 5891/5892 (NFC, no leading combining mark, code point
  classes, CONTEXTJ/CONTEXTO, Bidi) but *without* the hyphen checks, and written as
  ``xn--`` + Punycode;
* every label is then checked by the §5.4 rules: bytes 0x21-0x7E except ``.``, 1-63 bytes, the
  whole name at most 255 wire octets (including the final zero).

The key of labels ``l_1 ... l_m`` is ``rev(l_m) "." ... rev(l_1) "."`` (``www.evil.com`` ->
``moc.live.www.``); keys are compared as 254-byte strings zero-padded on the right, which for
keys (0x00 never occurs inside one) is the plain ``bytes`` order.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import InvalidInput

__all__ = [
    "KEY_LEN",
    "MAX_KEY",
    "MIN_KEY",
    "InvalidName",
    "Kind",
    "Rule",
    "check_labels",
    "key_to_labels",
    "key_to_name",
    "labels_to_key",
    "name_key",
    "name_to_labels",
    "subtree_bound",
]

KEY_LEN = 254  # the longest key: a 255-octet wire name minus one
MIN_KEY = b""  # the minimum sentinel (also the root name's key)
MAX_KEY = b"\xff" * KEY_LEN  # the maximum sentinel
MAX_WIRE = 255
MAX_LABEL = 63
_SEPARATORS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})


class InvalidName(InvalidInput):
    """A name (rule or query) that cannot be converted to valid wire labels (§5.4)."""


class Kind(enum.IntEnum):
    """What a rule blocks: the name itself, or the name and every name under it."""

    EXACT = 0
    SUBTREE = 1

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule as ingested: its key and kind, and where it came from (for reports and witnesses)."""

    key: bytes
    kind: Kind
    text: str  # the rule as written in the input
    source: str  # file name
    line: int  # 1-based line number in that file (0 if unknown)

    @property
    def name(self) -> str:
        return key_to_name(self.key)

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}" if self.line else self.source


def _idn_label(label: str) -> list[bytes]:
    """A non-ASCII label as A-label bytes (UTS #46 non-transitional, STD3 and hyphen checks off).

    The mapping may turn the label into ASCII or split it at a mapped full stop; every resulting
    label is returned (checked by the caller).
    """
    import idna

    try:
        mapped = idna.uts46_remap(label, std3_rules=False, transitional=False)
    except idna.IDNAError as e:
        raise InvalidName(f"label {label!r}: UTS #46 mapping failed ({e})") from None
    out = []
    for part in mapped.split("."):
        if part.isascii():
            out.append(part.lower().encode("ascii"))
            continue
        try:
            idna.check_nfc(part)
            idna.check_initial_combiner(part)
            for pos, cp in enumerate(part):
                v = ord(cp)
                classes = idna.idnadata.codepoint_classes
                if idna.intranges_contain(v, classes["PVALID"]):
                    continue
                if idna.intranges_contain(v, classes["CONTEXTJ"]):
                    if not idna.valid_contextj(part, pos):
                        raise idna.IDNAError(f"joiner U+{v:04X} not allowed here")
                elif idna.intranges_contain(v, classes["CONTEXTO"]):
                    if not idna.valid_contexto(part, pos):
                        raise idna.IDNAError(f"U+{v:04X} not allowed in this context")
                else:
                    raise idna.IDNAError(f"code point U+{v:04X} is not allowed in IDNs")
            idna.check_bidi(part)
        except (idna.IDNAError, ValueError) as e:
            raise InvalidName(f"label {label!r}: {e}") from None
        out.append(b"xn--" + part.encode("punycode"))
    return out


def check_labels(labels: Sequence[bytes]) -> tuple[bytes, ...]:
    """Validate wire labels by the §5.4 rules and lower-case ASCII letters; returns the labels.

    Raises InvalidName for the root name, an empty or over-long label, a byte outside 0x21-0x7E or
    a ``.`` inside a label, or a name longer than 255 wire octets.
    """
    if not labels:
        raise InvalidName("the root name cannot be a rule or a provable query")
    out = []
    wire = 1
    for lab in labels:
        if not 1 <= len(lab) <= MAX_LABEL:
            raise InvalidName(f"label of {len(lab)} bytes (1 to {MAX_LABEL} allowed)")
        for b in lab:
            if b < 0x21 or b > 0x7E or b == 0x2E:
                raise InvalidName(f"byte 0x{b:02x} in label {lab!r} (0x21-0x7e except '.' allowed)")
        wire += 1 + len(lab)
        out.append(lab.lower())
    if wire > MAX_WIRE:
        raise InvalidName(f"name of {wire} wire octets (at most {MAX_WIRE})")
    return tuple(out)


def name_to_labels(text: str) -> tuple[bytes, ...]:
    """Text name -> validated wire labels (see the module docstring); raises InvalidName."""
    if not isinstance(text, str):
        raise InvalidName(f"a name is text, got {type(text).__name__}")
    t = text.translate(_SEPARATORS)
    if t.endswith("."):
        t = t[:-1]
    if not t:
        raise InvalidName("the root name cannot be a rule or a provable query")
    labels: list[bytes] = []
    for lab in t.split("."):
        if lab.isascii():
            labels.append(lab.encode("ascii"))
        else:
            labels.extend(_idn_label(lab))
    return check_labels(labels)


def labels_to_key(labels: Sequence[bytes]) -> bytes:
    """The policy key of (already validated) wire labels: ``moc.live.www.`` for www.evil.com."""
    return b"".join(lab[::-1] + b"." for lab in reversed(labels))


def name_key(text: str) -> bytes:
    """The policy key of a text name (converted and validated as a rule name)."""
    return labels_to_key(name_to_labels(text))


def key_to_labels(key: bytes) -> tuple[bytes, ...]:
    """Inverse of :func:`labels_to_key` for a non-empty key ending in ``.``."""
    if not key or not key.endswith(b"."):
        raise InvalidName("a policy key is non-empty and ends with '.'")
    return tuple(part[::-1] for part in reversed(key[:-1].split(b".")))


def key_to_name(key: bytes) -> str:
    """The text name (A-labels, no trailing dot) of a key."""
    return ".".join(lab.decode("ascii") for lab in key_to_labels(key))


def subtree_bound(key: bytes) -> bytes:
    """``A`` of a subtree rule: the key with its final ``.`` replaced by ``/`` (SPEC §6)."""
    return key[:-1] + b"/"
