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


def test_freeze_heap_moves_the_live_objects_out_of_collections(monkeypatch):
    import gc

    from zkmb.service import freeze_heap

    kept = [[i] for i in range(1000)]  # objects the "service" keeps
    try:
        monkeypatch.setenv("ZKMB_GC_FREEZE", "0")
        assert freeze_heap() == 0.0 and gc.get_freeze_count() == 0
        monkeypatch.delenv("ZKMB_GC_FREEZE")
        freeze_heap()
        assert gc.get_freeze_count() >= len(kept)
        assert not any(gc.is_tracked(x) and x in gc.get_objects(2) for x in kept[:3])  # not walked
    finally:
        gc.unfreeze()


def test_log_gc_pauses_reports_collections(caplog):
    import gc
    import logging

    from zkmb.service import log_gc_pauses

    log = logging.getLogger("zkmb.test.gc")
    before = list(gc.callbacks)
    try:
        log_gc_pauses(log, min_s=0.0)
        with caplog.at_level(logging.DEBUG, logger="zkmb.test.gc"):
            gc.collect()
        assert any("generation-2 collection held the GIL" in r.getMessage() for r in caplog.records)
    finally:
        gc.callbacks[:] = before
