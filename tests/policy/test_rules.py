"""Names -> wire labels -> keys (SPEC §5.4, §6)."""

from __future__ import annotations

import pytest

from zkmb.errors import InvalidInput
from zkmb.policy.rules import (
    MAX_KEY,
    InvalidName,
    key_to_name,
    labels_to_key,
    name_key,
    name_to_labels,
    subtree_bound,
)


def test_key_examples():
    assert name_key("www.evil.com") == b"moc.live.www."
    assert name_key("www.evil.com.") == b"moc.live.www."
    assert name_key("WWW.Evil.COM") == b"moc.live.www."
    assert name_key("com") == b"moc."
    assert subtree_bound(b"moc.live.") == b"moc.live/"
    assert key_to_name(b"moc.live.www.") == "www.evil.com"
    # a subtree is the interval of keys with the prefix; xevil.com is not under evil.com
    assert name_key("a.evil.com").startswith(name_key("evil.com"))
    assert not name_key("xevil.com").startswith(name_key("evil.com"))


def test_ascii_labels_only_lowercased():
    assert name_to_labels("_dmarc.Example.com") == (b"_dmarc", b"example", b"com")
    assert name_to_labels("a--b.example") == (b"a--b", b"example")
    assert name_to_labels("-lead.trail-.example") == (b"-lead", b"trail-", b"example")
    assert name_to_labels("XN--CAF-DMA.fr") == (b"xn--caf-dma", b"fr")
    assert name_to_labels("a/b!~.example") == (b"a/b!~", b"example")


def test_idn_uts46_nontransitional():
    assert name_to_labels("café.fr") == (b"xn--caf-dma", b"fr")
    assert name_to_labels("CAFÉ.fr") == (b"xn--caf-dma", b"fr")  # mapped (case folded) first
    assert name_to_labels("münchen.de") == (b"xn--mnchen-3ya", b"de")
    assert name_to_labels("faß.de") == (b"xn--fa-hia", b"de")  # non-transitional: ß kept
    assert name_to_labels("gmaıl.net") == (b"xn--gmal-nza", b"net")
    assert name_to_labels("bücher。example") == (b"xn--bcher-kva", b"example")  # ideographic stop
    assert name_to_labels("ｅｘａｍｐｌｅ.com") == (b"example", b"com")  # fullwidth maps to ASCII


@pytest.mark.parametrize(
    "bad",
    ["", ".", "a..b", "a b.com", "a\tb.com", "a\x7f.com", "a" * 64 + ".com", "😀\u0301.com", "\u0301a.com"],
)
def test_invalid_names(bad):
    with pytest.raises(InvalidName):
        name_to_labels(bad)
    assert issubclass(InvalidName, InvalidInput)


def test_length_limits():
    ok = ".".join(["a" * 63] * 3 + ["b" * 61])  # wire: 3*64 + 62 + 1 = 255
    assert len(labels_to_key(name_to_labels(ok))) == 254
    with pytest.raises(InvalidName):
        name_to_labels(ok + "b")
    assert labels_to_key(name_to_labels(ok)) < MAX_KEY
