"""The committed blocklist (SPEC §6): ingest real filter lists, normalise, commit, look names up.

* :mod:`.rules`: names -> wire labels -> keys (UTS #46, §5.4 validation);
* :mod:`.formats`: hosts / plain / AdGuard-ABP / RPZ parsers into an :class:`IngestReport`;
* :mod:`.normalise`: merge, drop covered keys, sort;
* :mod:`.tree`: key hashes, gap leaves, the 4-ary depth-11 Poseidon tree (numba batches);
* :mod:`.policyfile`: the published file, building, loading with a tree cache;
* :mod:`.witness`: non-membership witness or the blocking rule of a name.

The commitment is specified in docs/protocol.md ("Policy commitment").
"""

from __future__ import annotations

from .formats import IngestReport, Problem, ingest
from .normalise import Normalised, normalise
from .policyfile import Policy, PolicyMismatch, build_policy, load_policy, policy_from_rules
from .rules import InvalidName, Kind, Rule, name_key, name_to_labels
from .witness import Blocked, NonMembership, check_name, witness

__all__ = [
    "Blocked",
    "IngestReport",
    "InvalidName",
    "Kind",
    "NonMembership",
    "Normalised",
    "Policy",
    "PolicyMismatch",
    "Problem",
    "Rule",
    "build_policy",
    "check_name",
    "ingest",
    "load_policy",
    "name_key",
    "name_to_labels",
    "normalise",
    "policy_from_rules",
    "witness",
]
