"""CO and PAD against unbound (a real, unmodified DoT resolver), when it is installed."""

from __future__ import annotations

import dns.message
import pytest
from zkmb.circuits.co import co_circuit
from zkmb.circuits.pad import pad_circuit
from zkmb.circuits.public import co_public_inputs, pad_public_inputs, parse_channel
from zkmb.circuits.witness import co_assignment, pad_assignment

from tests.tls.test_unbound import unbound
from zkmb.tls import DotClient, TlsClientConfig

from .conftest import SUITES


@pytest.mark.needs_system
@pytest.mark.parametrize("suite", SUITES)
def test_unbound_co_and_pad(tmp_path, suite):
    with unbound(tmp_path, suite) as (port, cert):
        config = TlsClientConfig("127.0.0.1", cafile=str(cert))
        with DotClient("127.0.0.1", port, config, padding_block=128, timeout=5) as c:
            c.query(dns.message.make_query("www.example.test", "A"))
            cap = c.capture
    assert cap.suite_name == suite
    co = co_assignment(cap)
    view = parse_channel(cap.client_bytes, cap.server_bytes)
    assert co_public_inputs(view, co.keys.comm_k) == co.public
    assert co_circuit(suite).solve(co.assignment).public_inputs() == co.public
    rec = cap.client_app_records[0]
    for j in range(-(-(len(rec.payload) - 16) // 64)):
        pa = pad_assignment(co.keys, rec.seq, j)
        w = pad_circuit(suite).solve(pa.assignment)
        assert w.public_inputs() == pad_public_inputs(co.keys.comm_k, rec.seq, j, pa.comm_pad, next_record=0)
