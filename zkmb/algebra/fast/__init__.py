"""The fast backend: numba kernels over numpy arrays. Same API as :mod:`zkmb.algebra.ref`.

Representations: Fq/Fr vectors ``(n, 4)`` uint64 Montgomery; G1 affine ``(n, 2, 4)``; G2 affine
``(n, 2, 2, 4)``; the point at infinity in affine form is all zeros.
"""

from ..kernels import compile_notice

compile_notice()

from .curves import *  # noqa: E402,F401,F403
from .fields import *  # noqa: E402,F401,F403
from .msm import *  # noqa: E402,F401,F403
from .ntt import *  # noqa: E402,F401,F403
from .pairing import *  # noqa: E402,F401,F403
