"""Blocklist parsers: hosts files, plain lists, AdGuard/ABP network rules and RPZ zones (SPEC §6).

Every input line ends up in exactly one place of the :class:`IngestReport`: a :class:`Rule`, an
``invalid`` entry (a name that fails §5.4), an ``unsupported`` entry (ABP ``@@`` exceptions, ``$``
options, regexes, ``*`` not leftmost, RPZ actions other than "block"), or a ``skipped`` count
(comments, blank lines, cosmetic ``##`` rules, URL/path rules, the localhost entries of hosts
files, RPZ SOA/NS records).  Nothing is dropped silently.

Line formats (``lines``: hosts, plain and ABP mixed freely, as DNS filter lists do):

* ``0.0.0.0 a.com b.com  # comment``: hosts entry, any IPv4/IPv6 address, several names: exact;
* ``a.com``: plain name: exact (subtree with the ``subtree`` format); ``*.a.com``: subtree;
* ``||a.com^``: subtree (``|`` after ``^`` allowed); ``||a.com/path``, ``|http://...``: URL rules,
  skipped (a DNS filter cannot apply them);
* ``!`` and ``#`` comments, ``[Adblock Plus 2.0]`` headers;
* a name token with a character host names do not use (``:port``, ``/``, ``@``, ``#``, ``?``, ``,``,
  spaces, quotes, ...; checked again after UTS #46 mapping) is *unsupported*, never kept as a name
  that could not match (:func:`not_a_host_name`).

RPZ (``rpz``): parsed with dnspython (``$ORIGIN``, ``$TTL``, escapes, parentheses; ``$INCLUDE`` is
refused).  Owner names are taken relative to the zone origin; ``name CNAME .`` (NXDOMAIN),
``CNAME *.`` (NODATA) and ``CNAME rpz-drop.`` block ``name`` exactly, ``*.name`` as a subtree
(which also blocks ``name`` itself: documented over-blocking).
"""

from __future__ import annotations

import io
import ipaddress
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..errors import InvalidInput
from .rules import InvalidName, Kind, Rule, _idn_label, check_labels, labels_to_key, name_to_labels

__all__ = [
    "FORMATS",
    "IngestReport",
    "Problem",
    "detect_format",
    "ingest",
    "not_a_host_name",
    "parse_lines",
    "parse_rpz",
]

FORMATS = ("auto", "lines", "hosts", "plain", "abp", "rpz", "subtree")

# Names hosts files carry for the machine itself, not as blocks (StevenBlack-style headers).
HOSTS_LOCAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "local",
        "broadcasthost",
        "ip6-localhost",
        "ip6-loopback",
        "ip6-localnet",
        "ip6-mcastprefix",
        "ip6-allnodes",
        "ip6-allrouters",
        "ip6-allhosts",
        "0.0.0.0",
    }
)

_ABP_DOMAIN = re.compile(r"^\|\|([^/^$|*]+)\^\|?$")
_RPZ_BLOCK_TARGETS = {".", "*.", "rpz-drop."}


@dataclass(frozen=True, slots=True)
class Problem:
    """A rule that was not taken: where, what, why."""

    source: str
    line: int
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.reason}: {self.text!r}"


@dataclass
class IngestReport:
    """Everything the parsers found, per category (see the module docstring)."""

    rules: list[Rule] = field(default_factory=list)
    invalid: list[Problem] = field(default_factory=list)
    unsupported: list[Problem] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    files: dict[str, str] = field(default_factory=dict)  # source -> format used

    @property
    def ok(self) -> bool:
        """True when no rule was invalid or unsupported."""
        return not self.invalid and not self.unsupported

    def summary(self) -> str:
        skipped = ", ".join(f"{v} {k}" for k, v in sorted(self.skipped.items())) or "none"
        return (
            f"{len(self.rules)} rules from {len(self.files)} file(s); {len(self.invalid)} invalid; "
            f"{len(self.unsupported)} unsupported; skipped: {skipped}"
        )


_PORT = re.compile(r":[0-9]*$")


def not_a_host_name(text: str) -> str | None:
    """Why a name token of a list (hosts, plain, ABP) is not a plain host name, or None.

    Host names in filter lists use letters, digits, ``-``, ``_`` and ``.`` (plus non-ASCII IDN
    labels).  Any other ASCII character means the token is something else -- a port (``a.com:443``), a
    URL path or user info (``/``, ``@``), a comment or anchor (``#``), a query string, a list of names
    -- and kept as a name it would be a rule that can never match a query while the name it meant
    stays provable.  Such rules are reported unsupported instead (SPEC §6)."""
    if ":" in text:
        if _PORT.search(text) and ":" not in text[: text.rindex(":")]:
            return "a port-specific rule cannot be enforced by DNS (it is not a host name)"
        return "':' in a name (an IPv6 address or a URL, not a host name)"
    if "/" in text:
        return "'/' in a name (a URL path, not a host name)"
    if "@" in text:
        return "'@' in a name (URL user info, not a host name)"
    if "#" in text:
        return "'#' in a name (a comment or anchor, not a host name)"
    odd = sorted({c for c in text if c.isascii() and not (c.isalnum() or c in "._-*")})
    if odd:
        return f"character(s) {''.join(odd)!r} do not occur in host names: the rule could never match"
    return None


def _add_name(report: IngestReport, text: str, kind: Kind, rule_text: str, source: str, line: int) -> None:
    why = not_a_host_name(text)
    if why is not None:
        report.unsupported.append(Problem(source, line, rule_text, why))
        return
    if text.startswith("*."):
        text, kind = text[2:], Kind.SUBTREE
    if "*" in text:
        report.unsupported.append(Problem(source, line, rule_text, "'*' other than a leftmost label"))
        return
    try:
        labels = name_to_labels(text)
    except InvalidName as e:
        report.invalid.append(Problem(source, line, rule_text, str(e)))
        return
    why = not_a_host_name(b".".join(labels).decode("ascii"))  # after UTS #46: U+FF1A maps to ':'
    if why is not None:
        report.unsupported.append(Problem(source, line, rule_text, why))
        return
    report.rules.append(Rule(labels_to_key(labels), kind, rule_text, source, line))


def _is_ip(tok: str) -> bool:
    if not (tok[:1].isdigit() or ":" in tok):
        return False
    try:
        ipaddress.ip_address(tok.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _parse_line(report: IngestReport, raw: str, source: str, line: int, plain: Kind = Kind.EXACT) -> None:
    s = raw.strip()
    skip = report.skipped
    if not s:
        skip["blank lines"] += 1
        return
    if s[0] in "#!" or (s[0] == "[" and s[-1] == "]"):
        skip["comments"] += 1
        return
    first = s.split(None, 1)[0]
    if _is_ip(first) and first != s:  # a hosts entry: only '#' comments, never cosmetic syntax
        toks = s.split("#", 1)[0].split()
        for name in toks[1:]:
            if name.lower().rstrip(".") in HOSTS_LOCAL_NAMES:
                skip["hosts local names"] += 1
            else:
                _add_name(report, name, Kind.EXACT, s, source, line)
        if len(toks) < 2:
            report.invalid.append(Problem(source, line, s, "hosts entry without a name"))
        return
    for marker in ("##", "#@#", "#?#", "#$#", "#%#", "$$"):
        if marker in s:
            skip["cosmetic/HTML rules"] += 1
            return
    if s.startswith("@@"):
        report.unsupported.append(Problem(source, line, s, "ABP exception rules (@@) are not supported"))
        return
    if len(s) > 1 and s[0] == "/" and s.endswith("/"):
        report.unsupported.append(Problem(source, line, s, "regex rules are not supported"))
        return
    if s.startswith("||"):
        if "$" in s:
            report.unsupported.append(Problem(source, line, s, "ABP $ options are not supported"))
            return
        m = _ABP_DOMAIN.match(s)
        if m:
            _add_name(report, m.group(1), Kind.SUBTREE, s, source, line)
        elif "/" in s:
            skip["URL/path rules"] += 1
        else:
            report.unsupported.append(Problem(source, line, s, "not a ||name^ domain rule"))
        return
    if s[0] == "|" or "://" in s:
        skip["URL/path rules"] += 1
        return
    text = s.split("#", 1)[0].strip() if "#" in s else s
    toks = text.split()
    if len(toks) == 1:
        tok = toks[0]
        if "$" in tok or "^" in tok or "|" in tok:
            report.unsupported.append(Problem(source, line, s, "ABP syntax other than ||name^"))
        elif "/" in tok:
            skip["URL/path rules"] += 1
        elif _is_ip(tok):
            report.unsupported.append(Problem(source, line, s, "an IP address, not a name"))
        else:
            _add_name(report, tok, plain, s, source, line)
        return
    report.invalid.append(Problem(source, line, s, "not a hosts entry, a name or an ABP rule"))


def parse_lines(report: IngestReport, lines: Iterable[str], source: str, plain: Kind = Kind.EXACT) -> None:
    """Hosts, plain and ABP lines (freely mixed) into ``report``; a plain name gets kind ``plain``
    (``subtree`` for lists of names each blocking its subtree)."""
    for i, raw in enumerate(lines, 1):
        _parse_line(report, raw, source, i, plain)


class _Collected(Exception):
    pass


def parse_rpz(report: IngestReport, text: str, source: str, origin: str | None = None) -> None:
    """An RPZ zone (dnspython's zone file reader) into ``report``.

    ``origin``: the zone origin if the file has no ``$ORIGIN`` (default: the root, so that
    owner names are taken as written).
    """
    import dns.exception
    import dns.name
    import dns.rdataclass
    import dns.rdatatype
    import dns.tokenizer
    import dns.transaction
    import dns.zonefile

    if origin is None and not re.search(r"^\s*\$ORIGIN\s", text, re.MULTILINE | re.IGNORECASE):
        origin = "."
    zone_origin = dns.name.from_text(origin) if origin is not None else None
    records: list[tuple[dns.name.Name, object, int]] = []
    line_of = {"n": 0}
    outside: list[tuple[dns.name.Name, int]] = []

    class Reader(dns.zonefile.Reader):
        def _rr_line(self):  # remember the line each record starts on
            line_of["n"] = self.tok.where()[1]
            before = len(records)
            super()._rr_line()
            last = self.last_name
            if len(records) == before and last is not None and not last.is_subdomain(self.zone_origin):
                outside.append((last, line_of["n"]))  # dnspython skips these silently

    class Txn(dns.zonefile.RRsetsReaderTransaction):
        def add(self, *args):
            name, _ttl, rd = args
            records.append((name, rd, line_of["n"]))

    idn_errors: dict[bytes, str] = {}

    class Codec(dns.name.IDNACodec):  # non-ASCII owner labels: our UTS #46 conversion
        def encode(self, label: str) -> bytes:
            if label.isascii():
                return label.encode("ascii")
            try:
                out = _idn_label(label)
                if len(out) != 1:
                    raise InvalidName(f"label {label!r} maps to several labels")
                return out[0]
            except InvalidName as e:
                raw = label.encode("utf-8", "surrogatepass")
                idn_errors[raw] = str(e)
                return raw  # fails check_labels below, reported with this reason

    manager = dns.zonefile.RRSetsReaderManager(zone_origin, False, dns.rdataclass.IN)
    txn = Txn(manager, True, False)
    tok = dns.tokenizer.Tokenizer(io.StringIO(text), source, idna_codec=Codec())
    reader = Reader(tok, dns.rdataclass.IN, txn, allow_include=False, default_ttl=0)  # TTLs do not matter
    try:
        reader.read()
    except dns.exception.DNSException as e:
        raise InvalidInput(f"{source}: RPZ zone does not parse: {e}") from None
    zone_origin = reader.zone_origin or dns.name.root
    lines = text.splitlines()
    for name, line in outside:
        raw = lines[line - 1].strip() if 0 < line <= len(lines) else str(name)
        report.invalid.append(Problem(source, line, raw, f"owner outside the zone origin {zone_origin}"))
    for name, rd, line in records:
        raw = lines[line - 1].strip() if 0 < line <= len(lines) else str(name)
        rdtype = rd.rdtype
        if not name.is_subdomain(zone_origin):
            report.invalid.append(Problem(source, line, raw, f"owner outside the zone origin {zone_origin}"))
            continue
        rel = name.relativize(zone_origin)
        labels = list(rel.labels)
        if not labels or labels == [b"@"] or rel == dns.name.empty:
            report.skipped["RPZ apex records"] += 1
            continue
        if rdtype in (dns.rdatatype.SOA, dns.rdatatype.NS):
            report.skipped["RPZ SOA/NS records"] += 1
            continue
        if any(lab.lower().startswith(b"rpz-") for lab in labels[-1:]):
            report.unsupported.append(Problem(source, line, raw, f"RPZ trigger {labels[-1]!r} not supported"))
            continue
        if rdtype != dns.rdatatype.CNAME or rd.target.to_text() not in _RPZ_BLOCK_TARGETS:
            what = f"CNAME {rd.target}" if rdtype == dns.rdatatype.CNAME else dns.rdatatype.to_text(rdtype)
            report.unsupported.append(Problem(source, line, raw, f"RPZ action {what} is not a block"))
            continue
        kind = Kind.EXACT
        if labels[0] == b"*":
            kind, labels = Kind.SUBTREE, labels[1:]
        if any(b"*" == lab for lab in labels):
            report.unsupported.append(Problem(source, line, raw, "'*' other than a leftmost label"))
            continue
        try:
            key = labels_to_key(check_labels(labels))
        except InvalidName as e:
            reason = next((idn_errors[lab] for lab in labels if lab in idn_errors), str(e))
            report.invalid.append(Problem(source, line, raw, reason))
            continue
        report.rules.append(Rule(key, kind, raw, source, line))


def detect_format(text: str, path: str = "") -> str:
    """``rpz`` for zone files (``.rpz``/``.zone`` names, ``$ORIGIN``/``$TTL``, an SOA), else ``lines``."""
    low = path.lower()
    if low.endswith((".rpz", ".zone", ".db")):
        return "rpz"
    head = text[:65536]
    if re.search(r"^\s*\$(ORIGIN|TTL)\s", head, re.MULTILINE | re.IGNORECASE):
        return "rpz"
    if re.search(r"\sIN\s+SOA\s|\sSOA\s.*\(", head):
        return "rpz"
    return "lines"


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidInput(f"{source}: not UTF-8 text ({e})") from None


def ingest(
    paths: Iterable[str | os.PathLike | tuple[str | os.PathLike, str]],
    fmt: str = "auto",
    origin: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    report: IngestReport | None = None,
) -> IngestReport:
    """Parse every input file into one report.  An input is a path (read with ``fmt``; ``auto``
    detects per file) or a ``(path, format)`` pair."""
    report = report if report is not None else IngestReport()
    items = [(os.fspath(p[0]), p[1]) if isinstance(p, tuple) else (os.fspath(p), fmt) for p in paths]
    for n, (path, f_fmt) in enumerate(items):
        if f_fmt not in FORMATS:
            raise InvalidInput(f"unknown format {f_fmt!r}; one of {', '.join(FORMATS)}")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            raise InvalidInput(f"cannot read {path}: {e.strerror}") from None
        text = _decode(data, path)
        if f_fmt == "auto":
            used = detect_format(text, path)
        else:
            used = f_fmt if f_fmt in ("rpz", "subtree") else "lines"
        report.files[path] = used
        if used == "rpz":
            parse_rpz(report, text, path, origin)
        else:
            parse_lines(report, text.splitlines(), path, Kind.SUBTREE if used == "subtree" else Kind.EXACT)
        if progress:
            progress("parse", n + 1, len(items))
    return report
