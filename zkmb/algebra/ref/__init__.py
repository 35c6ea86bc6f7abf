"""The reference backend: Python integers (and py_ecc for curves and pairings).

Same API as :mod:`zkmb.algebra.fast`; slow, simple, and the oracle for the cross-check suite.
"""

from .curves import *  # noqa: F401,F403
from .fields import *  # noqa: F401,F403
from .msm import *  # noqa: F401,F403
from .ntt import *  # noqa: F401,F403
from .pairing import *  # noqa: F401,F403
