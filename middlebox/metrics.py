"""Prometheus text-format metrics of the middlebox (exposition format 0.0.4), no dependency.

Counters: proofs verified / failed per circuit, decisions by action and reason, dropped verification
jobs, proof messages answered RATE_LIMITED (by kind), new connections refused (by reason), bans (by
reason) and connections cut (by mode and reason); a histogram of how long a record was held
(arrival to release); gauges for active flows and the verification queue.  Label values are
escaped; reasons are the flow core's fixed strings, so the label set stays small.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable

__all__ = ["HOLD_BUCKETS", "Metrics"]

HOLD_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)
"""Hold-time histogram buckets in seconds (the Q deadline is [2 s])."""


def _esc(v: str) -> str:
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**kw) -> str:
    return "{" + ",".join(f'{k}="{_esc(v)}"' for k, v in kw.items()) + "}"


class Metrics:
    """Counters and the hold-time histogram; ``gauges`` maps a name to a callable read at scrape time."""

    def __init__(self):
        self.proofs: dict[tuple[str, str], int] = defaultdict(int)
        self.decisions: dict[tuple[str, str], int] = defaultdict(int)
        self.dropped: dict[str, int] = defaultdict(int)
        self.rate_limited: dict[str, int] = defaultdict(int)
        self.refused: dict[str, int] = defaultdict(int)
        self.bans: dict[str, int] = defaultdict(int)
        self.cuts: dict[tuple[str, str], int] = defaultdict(int)
        self.resolver_closed_before_co = 0
        self.verify_seconds = 0.0
        self.hold_counts = [0] * (len(HOLD_BUCKETS) + 1)
        self.hold_sum = 0.0
        self.gauges: dict[str, tuple[str, Callable[[], float]]] = {}

    def verdict(self, circuit: str, ok: bool, seconds: float) -> None:
        self.proofs[(circuit, "verified" if ok else "failed")] += 1
        self.verify_seconds += seconds

    def drop(self, reason: str) -> None:
        self.dropped[reason] += 1

    def rate_limit(self, kind: str) -> None:
        """One proof-channel message answered RATE_LIMITED (``kind``: announce/co/pad/q)."""
        self.rate_limited[kind] += 1

    def refuse(self, reason: str) -> None:
        """A new connection refused before it had a flow (banned address, flow limits)."""
        self.refused[reason] += 1

    def ban(self, reason: str) -> None:
        """A client address banned (async mode: a record not proven by its deadline)."""
        self.bans[reason] += 1

    def cut(self, mode: str, reason: str) -> None:
        """A connection cut by the middlebox (a SPEC §2 violation, a missed deadline, ...)."""
        self.cuts[(mode, reason or "-")] += 1

    def decision(self, action: str, reason: str) -> None:
        self.decisions[(action, reason or "-")] += 1

    def hold(self, seconds: float) -> None:
        self.hold_counts[bisect.bisect_left(HOLD_BUCKETS, seconds)] += 1
        self.hold_sum += seconds

    def gauge(self, name: str, help_text: str, read: Callable[[], float]) -> None:
        self.gauges[name] = (help_text, read)

    def render(self) -> str:
        """The exposition text."""
        out = [
            "# HELP zkmb_proofs_total Proofs checked, by circuit and result.",
            "# TYPE zkmb_proofs_total counter",
        ]
        for (circuit, result), v in sorted(self.proofs.items()):
            out.append(f"zkmb_proofs_total{_labels(circuit=circuit, result=result)} {v}")
        out += [
            "# HELP zkmb_verify_seconds_total Time from queueing to verdict, summed over proofs.",
            "# TYPE zkmb_verify_seconds_total counter",
            f"zkmb_verify_seconds_total {self.verify_seconds:.6f}",
            "# HELP zkmb_verify_dropped_total Verification jobs dropped (overload), by reason.",
            "# TYPE zkmb_verify_dropped_total counter",
        ]
        for reason, v in sorted(self.dropped.items()):
            out.append(f"zkmb_verify_dropped_total{_labels(reason=reason)} {v}")
        out += [
            "# HELP zkmb_proof_rate_limited_total Proof-channel messages answered RATE_LIMITED, by kind.",
            "# TYPE zkmb_proof_rate_limited_total counter",
        ]
        for kind, v in sorted(self.rate_limited.items()):
            out.append(f"zkmb_proof_rate_limited_total{_labels(kind=kind)} {v}")
        out += [
            "# HELP zkmb_connections_refused_total New DoT connections refused, by reason.",
            "# TYPE zkmb_connections_refused_total counter",
        ]
        for reason, v in sorted(self.refused.items()):
            out.append(f"zkmb_connections_refused_total{_labels(reason=reason)} {v}")
        out += [
            "# HELP zkmb_bans_total Client addresses banned, by reason.",
            "# TYPE zkmb_bans_total counter",
        ]
        for reason, v in sorted(self.bans.items()):
            out.append(f"zkmb_bans_total{_labels(reason=reason)} {v}")
        out += [
            "# HELP zkmb_cuts_total Connections cut by the middlebox, by enforcement mode and reason.",
            "# TYPE zkmb_cuts_total counter",
        ]
        for (mode, reason), v in sorted(self.cuts.items()):
            out.append(f"zkmb_cuts_total{_labels(mode=mode, reason=reason)} {v}")
        out += [
            "# HELP zkmb_resolver_closed_before_co_total Connections the resolver closed before their CO "
            "was accepted (its idle time-out is shorter than the channel opening).",
            "# TYPE zkmb_resolver_closed_before_co_total counter",
            f"zkmb_resolver_closed_before_co_total {self.resolver_closed_before_co}",
            "# HELP zkmb_decisions_total Decisions on client bytes, by action and reason.",
            "# TYPE zkmb_decisions_total counter",
        ]
        for (action, reason), v in sorted(self.decisions.items()):
            out.append(f"zkmb_decisions_total{_labels(action=action, reason=reason)} {v}")
        out += [
            "# HELP zkmb_record_hold_seconds Time an application record waited for its proof.",
            "# TYPE zkmb_record_hold_seconds histogram",
        ]
        cum = 0
        for le, c in zip(HOLD_BUCKETS, self.hold_counts, strict=False):
            cum += c
            out.append(f"zkmb_record_hold_seconds_bucket{_labels(le=repr(le))} {cum}")
        cum += self.hold_counts[-1]
        out += [
            f'zkmb_record_hold_seconds_bucket{{le="+Inf"}} {cum}',
            f"zkmb_record_hold_seconds_sum {self.hold_sum:.6f}",
            f"zkmb_record_hold_seconds_count {cum}",
        ]
        for name, (help_text, read) in sorted(self.gauges.items()):
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {read()}"]
        return "\n".join(out) + "\n"
