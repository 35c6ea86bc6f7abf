"""zkmb.client_stub: the stub resolver (plain DNS on loopback in, proved DoT through the middlebox out).

* :mod:`.cache`: TTL-respecting answer cache;
* :mod:`.listener`: UDP/TCP DNS listener, strict parsing, local policy check (blocked -> NXDOMAIN + EDE 15);
* :mod:`.prover`: the statement prover interface and its Groth16 implementation;
* :mod:`.upstream`: the pool of proved DoT connections through the middlebox relay;
* :mod:`.cli`: ``zkmb stub`` and ``zkmb demo``.
"""
