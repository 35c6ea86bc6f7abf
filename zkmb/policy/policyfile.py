"""The published policy file, building a policy from blocklists, and loading with a tree cache.

File format (UTF-8 text, ``\\n`` line ends), version 2::

    zkmb-policy 2
    commitment zkmb/v2 poseidon-bn254-circomlib capacity-tags key=P9 leaf=P2 node=P4 arity=4
    depth 11
    rules 3
    root 0x<64 hex digits>
    exact<TAB>ads.example.com<TAB>hosts.txt:12<TAB>0.0.0.0 ads.example.com
    subtree<TAB>evil.com<TAB>list.txt:3<TAB>||evil.com^
    ...

One line per normalised rule, sorted by key (sentinels implicit): the kind, the name (canonical
A-label text: lower-case, no trailing dot), then optionally where the rule came from and its text
(the last field may contain tabs).  The commitment line names the hash layout and the tree's arity
(SPEC §6: a published parameter, also bound into the node tag); a loader accepts exactly this line,
so a version-1 file (binary tree, tags as inputs) is refused, never read with the other shape.  A
loader rebuilds the tree from the names and refuses the file (:class:`PolicyMismatch`) unless the
root equals the header's.  The built tree is cached in
``cache_dir`` (default ``$ZKMB_CACHE_DIR`` or ``~/.cache/zkmb/policy``) as ``<sha256 of file>.npz``;
a later load of the same file bytes uses it without re-hashing (the cache is trusted local state).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InvalidInput
from ..gadgets.merkle import POLICY_ARITY, POLICY_DEPTH
from .formats import IngestReport, ingest
from .normalise import Normalised, NotNormalised, normalise
from .rules import InvalidName, Kind, check_labels, key_to_name, labels_to_key
from .tree import PolicyTree, build_tree

__all__ = [
    "COMMITMENT",
    "FORMAT_VERSION",
    "Policy",
    "PolicyMismatch",
    "build_policy",
    "cache_policy",
    "default_cache_dir",
    "load_policy",
    "policy_from_rules",
]

FORMAT_VERSION = 2
CACHE_VERSION = 3
"""Tree caches of an older version are ignored (version 1 caches predate the normal-form check,
version 2 ones hold a binary tree with v1 tags)."""
MAGIC = "zkmb-policy"
COMMITMENT = f"zkmb/v2 poseidon-bn254-circomlib capacity-tags key=P9 leaf=P2 node=P4 arity={POLICY_ARITY}"
Progress = Callable[[str, int, int], None]


class PolicyMismatch(InvalidInput):
    """A policy file whose rules do not hash to the root it states (or a malformed policy file)."""


def default_cache_dir() -> str:
    return os.environ.get("ZKMB_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "zkmb", "policy"
    )


class _BlobKeys(Sequence):
    """Sorted keys stored as one byte blob plus offsets (a cache-loaded policy; bisect-able)."""

    def __init__(self, blob: np.ndarray, offsets: np.ndarray):
        self._blob = blob.tobytes()
        self._off = offsets.tolist()

    def __len__(self) -> int:
        return len(self._off) - 1

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._blob[self._off[i] : self._off[i + 1]]


@dataclass(frozen=True, slots=True)
class Provenance:
    source: str
    line: int
    text: str


@dataclass
class Policy:
    """A committed policy: sorted keys and kinds (no sentinels), the tree, where rules came from."""

    keys: Sequence[bytes]
    kinds: np.ndarray  # uint8 Kind per key
    tree: PolicyTree
    provenance: list[Provenance | None] | None = None
    path: str | None = None  # the file it was loaded from (provenance is read lazily from it)

    @property
    def root(self) -> int:
        return self.tree.root

    @property
    def depth(self) -> int:
        return self.tree.depth

    def __len__(self) -> int:
        return len(self.keys)

    def kind(self, i: int) -> Kind:
        return Kind(int(self.kinds[i]))

    def provenance_of(self, i: int) -> Provenance | None:
        if self.provenance is None and self.path is not None:
            self.provenance = _read_file(self.path)[3]
        return self.provenance[i] if self.provenance else None

    def write(self, path: str | os.PathLike, provenance: bool = True) -> None:
        """Write the policy file (atomically); only the published tree shape (arity 4) has a format."""
        if self.tree.arity != POLICY_ARITY:
            raise InvalidInput(
                f"an arity-{self.tree.arity} tree has no policy file format (arity {POLICY_ARITY})"
            )
        path = os.fspath(path)
        out = [
            f"{MAGIC} {FORMAT_VERSION}\n",
            f"commitment {COMMITMENT}\n",
            f"depth {self.depth}\n",
            f"rules {len(self)}\n",
            f"root 0x{self.root:064x}\n",
        ]
        names = [str(Kind(k)) for k in range(2)]
        for i, key in enumerate(self.keys):
            line = f"{names[self.kinds[i]]}\t{key_to_name(key)}"
            p = self.provenance_of(i) if provenance else None
            if p is not None:
                src = p.source.replace("\t", " ").replace("\n", " ")
                line += f"\t{src}:{p.line}\t{p.text.replace(chr(10), ' ')}"
            out.append(line + "\n")
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(out)
        os.replace(tmp, path)

    def _cache_arrays(self) -> dict[str, np.ndarray]:
        blob = b"".join(self.keys)
        offsets = np.zeros(len(self.keys) + 1, dtype=np.int64)
        np.cumsum([len(k) for k in self.keys], out=offsets[1:])
        return {
            "keys_blob": np.frombuffer(blob, dtype=np.uint8),
            "key_offsets": offsets,
            "kinds": np.asarray(self.kinds, dtype=np.uint8),
            "root": np.frombuffer(self.root.to_bytes(32, "big"), dtype=np.uint8),
            "version": np.array([CACHE_VERSION], dtype=np.int64),
        }


def policy_from_rules(
    normalised: Normalised, depth: int = POLICY_DEPTH, progress: Progress | None = None
) -> Policy:
    """Commit to normalised rules."""
    kinds = np.asarray([int(k) for k in normalised.kinds], dtype=np.uint8)
    tree = build_tree(normalised.keys, kinds, depth, progress)
    prov = [None if r is None else Provenance(r.source, r.line, r.text) for r in normalised.rules]
    return Policy(normalised.keys, kinds, tree, prov)


def build_policy(
    inputs: Iterable[str | os.PathLike],
    fmt: str = "auto",
    origin: str | None = None,
    depth: int = POLICY_DEPTH,
    progress: Progress | None = None,
) -> tuple[Policy, IngestReport, Normalised]:
    """Parse blocklists, normalise and commit.  The caller decides what to do with report problems."""
    report = ingest(inputs, fmt, origin, progress)
    norm = normalise(report.rules)
    if progress:
        progress("normalise", len(norm), len(norm))
    return policy_from_rules(norm, depth, progress), report, norm


# ---------------------------------------------------------------------------------------------- loading


def _bad(path: str, msg: str) -> PolicyMismatch:
    return PolicyMismatch(f"{path}: {msg}")


def _read_file(path: str):
    """Parse a policy file: (header dict, keys, kinds, provenance, sha256 hex)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad(path, "not UTF-8") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if len(lines) < 5:
        raise _bad(path, "truncated header")
    if lines[0] != f"{MAGIC} {FORMAT_VERSION}":
        raise _bad(path, f"not a version-{FORMAT_VERSION} zkmb policy file (first line {lines[0][:40]!r})")
    if lines[1] != f"commitment {COMMITMENT}":
        raise _bad(path, f"unknown commitment scheme {lines[1][:80]!r}")
    header = {}
    for ln, field in zip(lines[2:5], ("depth", "rules", "root"), strict=True):
        k, _, v = ln.partition(" ")
        if k != field:
            raise _bad(path, f"expected the {field!r} header line, got {ln[:40]!r}")
        try:
            header[k] = int(v, 16) if k == "root" else int(v)
        except ValueError:
            raise _bad(path, f"bad {field} value {v[:40]!r}") from None
    if not 1 <= header["depth"] <= 16:  # arity 4: at most 2^32 leaves
        raise _bad(path, f"depth {header['depth']} out of range")
    body = lines[5:]
    if len(body) != header["rules"]:
        raise _bad(path, f"header says {header['rules']} rules, the file has {len(body)}")
    keys: list[bytes] = []
    kinds = np.empty(len(body), dtype=np.uint8)
    prov: list[Provenance | None] = []
    kind_of = {"exact": Kind.EXACT, "subtree": Kind.SUBTREE}
    for i, ln in enumerate(body):
        parts = ln.split("\t", 3)
        kd = kind_of.get(parts[0])
        if kd is None or len(parts) not in (2, 4):
            raise _bad(path, f"line {i + 6}: expected KIND<TAB>NAME[<TAB>SOURCE:LINE<TAB>TEXT]")
        name = parts[1]
        try:
            raw = name.encode("ascii")
            labels = check_labels(raw.split(b"."))
        except (UnicodeEncodeError, InvalidName) as e:
            raise _bad(path, f"line {i + 6}: bad name {name[:80]!r} ({e})") from None
        if b".".join(labels) != raw:
            raise _bad(path, f"line {i + 6}: name {name[:80]!r} is not in canonical (lower-case) form")
        keys.append(labels_to_key(labels))
        kinds[i] = kd
        if len(parts) == 4:
            src, _, num = parts[2].rpartition(":")
            prov.append(Provenance(src, int(num) if num.isdigit() else 0, parts[3]))
        else:
            prov.append(None)
    return header, keys, kinds, prov, digest


def load_policy(
    path: str | os.PathLike,
    cache_dir: str | None = None,
    use_cache: bool = True,
    progress: Progress | None = None,
) -> Policy:
    """Load a policy file, rebuilding its tree (or using the cache for these exact file bytes), and
    refuse it (:class:`PolicyMismatch`) unless the root matches the header."""
    path = os.fspath(path)
    cache_dir = cache_dir or default_cache_dir()
    if use_cache:
        try:
            with open(path, "rb") as f:
                digest = hashlib.file_digest(f, "sha256").hexdigest()
        except OSError as e:
            raise InvalidInput(f"cannot read {path}: {e.strerror}") from None
        cached = _load_cache(os.path.join(cache_dir, f"{digest}.npz"))
        if cached is not None:
            cached.path = path
            return cached
    header, keys, kinds, prov, digest = _read_file(path)
    try:
        tree = build_tree(keys, kinds, header["depth"], progress)
    except NotNormalised as e:
        raise _bad(path, f"line {e.index + 6}: {e}") from None
    except InvalidInput as e:
        raise _bad(path, str(e)) from None
    if tree.root != header["root"]:
        raise _bad(
            path, f"the rules hash to root 0x{tree.root:064x}, the file states 0x{header['root']:064x}"
        )
    policy = Policy(keys, kinds, tree, prov, path)
    if use_cache:
        try:
            os.makedirs(cache_dir, exist_ok=True)
            tree.save(os.path.join(cache_dir, f"{digest}.npz"), policy._cache_arrays())
        except OSError:
            pass  # a cache that cannot be written only costs time
    return policy


def cache_policy(policy: Policy, path: str | os.PathLike, cache_dir: str | None = None) -> str | None:
    """Cache the tree of ``policy`` for the bytes now in its file ``path`` (as :func:`load_policy`
    would); returns the cache file, or None if it could not be written."""
    cache_dir = cache_dir or default_cache_dir()
    with open(os.fspath(path), "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    file = os.path.join(cache_dir, f"{digest}.npz")
    try:
        os.makedirs(cache_dir, exist_ok=True)
        policy.tree.save(file, policy._cache_arrays())
    except OSError:
        return None
    return file


def _load_cache(file: str) -> Policy | None:
    """A policy from a cache file, or None if there is none or it is unusable."""
    if not os.path.exists(file):
        return None
    try:
        with np.load(file, allow_pickle=False) as data:
            if int(data["version"][0]) != CACHE_VERSION:
                return None
            tree = PolicyTree.load(data)
            if tree.arity != POLICY_ARITY:
                return None
            keys = _BlobKeys(data["keys_blob"], data["key_offsets"])
            kinds = data["kinds"]
            root = int.from_bytes(data["root"].tobytes(), "big")
    except (OSError, ValueError, KeyError):
        return None
    if tree.root != root or len(keys) != kinds.shape[0] or tree.n_leaves != len(keys) + 1:
        return None
    return Policy(keys, kinds, tree)
