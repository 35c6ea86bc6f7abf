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


# Rule text that is not a plain host name: kept as a name it would be a rule that never matches a
# query while the name it meant stays provable (issue: ``||evil.com:443^`` became ``evil.com:443``).
NOT_HOST_NAMES = [
    ("||evil.com:443^", "port-specific"),
    ("||evil.com:^", "port-specific"),
    ("evil.com:443", "port-specific"),
    ("0.0.0.0 evil.com:443", "port-specific"),
    ("127.0.0.1 evil.com:8080", "port-specific"),
    ("||[::1]^", "':'"),
    ("||user@evil.com^", "'@'"),
    ("user@evil.com", "'@'"),
    ("0.0.0.0 user@evil.com", "'@'"),
    ("0.0.0.0 evil.com/ads", "'/'"),
    ("||evil.com#^", "'#'"),
    ("||evil.com ^", "' '"),
    ("||evil.com (x)^", "' ()'"),
    ("||evil.com?^", "'?'"),
    ("evil.com?x=1", "'=?'"),
    ("||evil.com%2f^", "'%'"),
    ("evil.com,ads.com", "','"),
    ("evil.com;", "';'"),
    ('"evil.com"', "'\"'"),
    ("~evil.com", "'~'"),
    ("||evil.com\\^", "'\\\\'"),
    ("evil.com\uff1a443", "port-specific"),  # FULLWIDTH COLON: UTS #46 maps it to ':'
]


@pytest.mark.parametrize(("text", "reason"), NOT_HOST_NAMES)
def test_not_a_host_name_is_unsupported(text, reason):
    rep = IngestReport()
    parse_lines(rep, [text], "t.txt")
    assert rep.rules == [] and rep.invalid == []
    (p,) = rep.unsupported
    assert p.text == text and reason in p.reason, p.reason
    assert not rep.ok  # --strict refuses the build


def test_port_rule_does_not_hide_the_other_names():
    """A hosts line with one bad token still takes its good names; the bad one is reported."""
    rep = IngestReport()
    parse_lines(rep, ["127.0.0.1 evil.com:8080 ads.com", "||good.com^", "good.org"], "t.txt")
    assert _rules(rep) == {("ads.com", "exact"), ("good.com", "subtree"), ("good.org", "exact")}
    assert len(rep.unsupported) == 1 and rep.unsupported[0].line == 1


@pytest.mark.parametrize("text", ["_dmarc.evil.com", "a-b.evil.com", "a--b.com", "xn--caf-dma.fr", "café.fr"])
def test_host_names_still_taken(text):
    rep = IngestReport()
    parse_lines(rep, [text, f"||{text}^", f"0.0.0.0 {text}"], "t.txt")
    assert len(rep.rules) == 3 and rep.ok


def test_policy_build_reports_port_rules(tmp_path, capsys):
    """The build reports the port rule as unsupported (it used to say 0 invalid, 0 unsupported)."""
    from zkmb.cli import main

    src = tmp_path / "list.txt"
    src.write_text("||evil.com:443^\n||ads.com^\n")
    out = tmp_path / "p.policy"
    rc = main(["policy", "build", str(src), "-o", str(out)])
    cap = capsys.readouterr()
    assert rc == 0 and "1 unsupported" in cap.out and "port-specific" in cap.err
    assert main(["policy", "build", str(src), "--strict", "-o", str(tmp_path / "s.policy")]) == 1
