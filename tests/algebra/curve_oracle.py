"""py_ecc as the independent oracle for the curve and MSM suites (canonical points in, canonical out)."""

from __future__ import annotations

import functools
import random

import py_ecc.optimized_bn128 as bn

from zkmb.algebra.params import B_G2, P, R
from zkmb.algebra.ref.curves import fq2_sqrt, fq_sqrt

# the cofactor of G2 in E'(Fq2): #E'(Fq2) = r (2p - r)
G2_COFACTOR = 2 * P - R


class Oracle:
    """Group operations on canonical points computed with py_ecc (``name`` is "g1" or "g2")."""

    def __init__(self, name: str):
        self.name = name
        self.is_g1 = name == "g1"
        self.gen_pe = bn.G1 if self.is_g1 else bn.G2
        self.b = bn.b if self.is_g1 else bn.b2

    def __repr__(self) -> str:
        return self.name

    def api(self, backend, op: str):
        """The backend function ``<name>_<op>`` (``msm`` maps to ``msm_<name>``)."""
        return getattr(backend, f"msm_{self.name}" if op == "msm" else f"{self.name}_{op}")

    def pe(self, p):
        if self.is_g1:
            return bn.Z1 if p is None else (bn.FQ(p[0]), bn.FQ(p[1]), bn.FQ.one())
        return bn.Z2 if p is None else (bn.FQ2(list(p[0])), bn.FQ2(list(p[1])), bn.FQ2.one())

    def un(self, q):
        if bn.is_inf(q):
            return None
        x, y = bn.normalize(q)
        if self.is_g1:
            return (int(x), int(y))
        return ((int(x.coeffs[0]), int(x.coeffs[1])), (int(y.coeffs[0]), int(y.coeffs[1])))

    def add(self, p, q):
        return self.un(bn.add(self.pe(p), self.pe(q)))

    def neg(self, p):
        return self.un(bn.neg(self.pe(p)))

    def mul(self, p, k: int):
        return self.un(bn.multiply(self.pe(p), k % R))

    def gen_mul(self, k: int):
        return self.un(bn.multiply(self.gen_pe, k % R))

    def msm(self, points, scalars):
        acc = self.pe(None)
        for p, k in zip(points, scalars, strict=True):
            acc = bn.add(acc, bn.multiply(self.pe(p), k % R))
        return self.un(acc)

    def order_divides_r(self, p) -> bool:
        """The slow subgroup test [r] p == O."""
        return bn.is_inf(bn.multiply(self.pe(p), R))

    def on_curve(self, p) -> bool:
        return bn.is_on_curve(self.pe(p), self.b)

    @functools.cache  # noqa: B019 (two instances for the whole session)
    def points(self, count: int = 6, seed: int = 7) -> tuple[tuple[int, object], ...]:
        """(discrete log, point) pairs of random subgroup points."""
        rng = random.Random(f"{self.name}-{seed}")
        out = []
        for _ in range(count):
            a = rng.randrange(1, R)
            out.append((a, self.gen_mul(a)))
        return tuple(out)

    def off_curve(self, p):
        """A point with p's x and a wrong y (not on the curve)."""
        if self.is_g1:
            return (p[0], (p[1] + 1) % P)
        return (p[0], ((p[1][0] + 1) % P, p[1][1]))

    @functools.cache  # noqa: B019
    def twist_points_outside_g2(self, count: int = 3, seed: int = 11) -> tuple:
        """Points on E'(Fq2) outside G2: random x, y from an Fq2 square root."""
        assert not self.is_g1
        rng = random.Random(seed)
        out = []
        while len(out) < count:
            x = (rng.randrange(P), rng.randrange(P))
            x2 = ((x[0] * x[0] - x[1] * x[1]) % P, 2 * x[0] * x[1] % P)
            x3 = ((x2[0] * x[0] - x2[1] * x[1]) % P, (x2[0] * x[1] + x2[1] * x[0]) % P)
            y = fq2_sqrt(((x3[0] + B_G2[0]) % P, (x3[1] + B_G2[1]) % P))
            if y is not None:
                out.append((x, y))
        return tuple(out)


def random_g1_on_curve(rng: random.Random):
    """A random point of E(Fq) from a square root (G1 has cofactor 1, so it is in G1)."""
    while True:
        x = rng.randrange(P)
        y = fq_sqrt((x * x * x + 3) % P)
        if y is not None:
            return (x, y)


G1 = Oracle("g1")
G2 = Oracle("g2")
