"""Parsers for hosts, plain, AdGuard/ABP and RPZ inputs: every line accounted for."""

from __future__ import annotations

import os

import pytest

from zkmb.errors import InvalidInput
from zkmb.policy.formats import IngestReport, detect_format, ingest, parse_lines
from zkmb.policy.rules import Kind

DATA = os.path.join(os.path.dirname(__file__), "data")


def _rules(report):
    return {(r.name, str(r.kind)) for r in report.rules}


def test_hosts():
    rep = ingest([os.path.join(DATA, "hosts.txt")])
    assert rep.files[os.path.join(DATA, "hosts.txt")] == "lines"
    assert _rules(rep) == {
        (n, "exact")
        for n in [
            "ads.example.com",
            "tracker.example.net",
            "a.doubleclick.test",
            "b.doubleclick.test",
            "c.doubleclick.test",
            "ipv6.ads.test",
            "mixed.case.example.org",
            "_dmarc.example.com",
            "xn--caf-dma.fr",
            "double-hash.example",
        ]
    }
    assert rep.skipped["hosts local names"] == 5
    assert [(p.line, p.text) for p in rep.invalid] == [
        (15, "0.0.0.0 bad..name.com"),
        (18, "0.0.0.0 # only a comment"),
    ]
    lines = {r.name: r.line for r in rep.rules}
    assert lines["ipv6.ads.test"] == 12 and lines["c.doubleclick.test"] == 11


def test_plain_and_wildcards():
    rep = ingest([os.path.join(DATA, "plain.txt")])
    assert _rules(rep) == {
        ("malware.test", "exact"),
        ("phishing.example", "exact"),
        ("xn--caf-dma.example", "exact"),
        ("wild.example", "subtree"),
        ("xn--mnchen-3ya.example", "exact"),
        ("a--b.example", "exact"),
    }
    assert [(p.line, p.reason) for p in rep.unsupported] == [(8, "an IP address, not a name")]
    rep2 = ingest([(os.path.join(DATA, "plain.txt"), "subtree")])
    assert all(r.kind == Kind.SUBTREE for r in rep2.rules) and len(rep2.rules) == 6


def test_adguard():
    rep = ingest([os.path.join(DATA, "adguard.txt")])
    assert _rules(rep) == {
        ("evil.com", "subtree"),
        ("sub.tracker.io", "subtree"),
        ("hosts-in-abp.test", "exact"),
        ("plain-in-abp.test", "exact"),
    }
    reasons = {p.line: p.reason for p in rep.unsupported}
    assert set(reasons) == {6, 7, 8, 12}  # $option, @@, regex, ||partial
    assert "$" in reasons[6] and "@@" in reasons[7] and "regex" in reasons[8]
    assert rep.skipped["cosmetic/HTML rules"] == 1
    assert rep.skipped["URL/path rules"] == 2
    assert rep.skipped["comments"] == 3
    assert not rep.invalid


def test_rpz():
    path = os.path.join(DATA, "policy.rpz")
    assert detect_format(open(path).read()) == "rpz"
    rep = ingest([path])
    assert rep.files[path] == "rpz"
    assert _rules(rep) == {
        ("badsite.com", "exact"),
        ("badsite.com", "subtree"),
        ("tracker.example", "exact"),
        ("abc.org", "exact"),
        ("xn--bcher-kva.example", "exact"),
    }
    assert {r.line for r in rep.rules} == {6, 7, 8, 9, 10}
    invalid = {p.line: p.reason for p in rep.invalid}
    assert set(invalid) == {11, 15}  # escaped dot inside a label; owner outside the origin
    assert {p.line for p in rep.unsupported} == {12, 13, 14}
    assert rep.skipped["RPZ apex records"] == 2


def test_rpz_without_origin_and_bad_zone(tmp_path):
    p = tmp_path / "z.rpz"
    p.write_text("evil.com CNAME .\n*.x.org CNAME .\n")
    rep = ingest([p])
    assert _rules(rep) == {("evil.com", "exact"), ("x.org", "subtree")}
    p.write_text("$ORIGIN rpz.\nevil.com CNAME (\n")
    with pytest.raises(InvalidInput):
        ingest([p])
    p.write_text("$INCLUDE /etc/passwd\n")
    with pytest.raises(InvalidInput):
        ingest([p])


def test_mixed_inputs_one_report():
    rep = ingest([os.path.join(DATA, f) for f in ("hosts.txt", "plain.txt", "adguard.txt", "policy.rpz")])
    assert len(rep.files) == 4 and len(rep.rules) == 10 + 6 + 4 + 5
    assert "25 rules from 4 file(s)" in rep.summary()


def test_every_line_accounted_for():
    rep = IngestReport()
    lines = open(os.path.join(DATA, "adguard.txt")).read().splitlines()
    parse_lines(rep, lines, "x")
    taken = {r.line for r in rep.rules} | {p.line for p in rep.invalid + rep.unsupported}
    assert len(taken) + sum(rep.skipped.values()) == len(lines)
