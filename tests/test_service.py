"""zkmb.service: the services' process settings."""

from __future__ import annotations

import sys

from zkmb.service import SWITCH_INTERVAL_S, configure_service


def test_configure_service_shortens_the_gil_switch_interval_and_keeps_a_shorter_one():
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)  # CPython's default
        configure_service()
        assert abs(sys.getswitchinterval() - SWITCH_INTERVAL_S) < 1e-9
        sys.setswitchinterval(0.0002)
        configure_service()
        assert abs(sys.getswitchinterval() - 0.0002) < 1e-9
    finally:
        sys.setswitchinterval(before)
