"""The stub's proving pool: priorities between steps, cancellation, errors, parallel steps."""

from __future__ import annotations

import concurrent.futures
import threading
import time

import pytest
from zkmb.client_stub.scheduler import AHEAD, OPENING, QUERY, TABLES, URGENT, ProvingPool, blocking_job


def _job(log: list, name: str, stages: int = 2, width: int = 1, dt: float = 0.02, result=None):
    def gen():
        for s in range(stages):
            yield [lambda s=s, i=i: (time.sleep(dt), log.append((name, s, i))) for i in range(width)]
        return result if result is not None else name

    return gen()


class _Steps:
    """Steps that each sleep ``dt``, recording in order their names and what else ran beside them
    (``log``), how many run now and at most at once (``peak``)."""

    def __init__(self, dt: float):
        self.dt, self.lock, self.running, self.log, self.peak = dt, threading.Lock(), [], [], 0

    @property
    def now(self) -> int:
        return len(self.running)

    def step(self, name) -> None:
        with self.lock:
            self.running.append(name)
            self.peak = max(self.peak, len(self.running))
            self.log.append((name, tuple(self.running)))
        time.sleep(self.dt)
        with self.lock:
            self.running.remove(name)

    def names(self) -> list:
        return [n for n, _ in self.log]


def test_result_and_parallel_steps():
    """The steps of one stage run at once on the workers; stages run in order."""
    pool = ProvingPool(workers=2)
    st = _Steps(0.1)

    def gen():
        for s in range(3):
            yield [lambda s=s: st.step(s), lambda s=s: st.step(s)]
        return "q"

    assert pool.submit(QUERY, gen()).future.result(10) == "q"
    assert st.peak == 2 and st.names() == [0, 0, 1, 1, 2, 2]
    pool.shutdown()


def test_priority_between_steps():
    """A query submitted while a long look-ahead job runs starts at the next step boundary."""
    pool = ProvingPool(workers=1)
    log: list = []
    bg = pool.submit(AHEAD, _job(log, "pad", stages=10, dt=0.03))
    time.sleep(0.05)
    q = pool.submit(QUERY, _job(log, "q", stages=2, dt=0.01))
    q.future.result(10)
    bg.future.result(10)
    order = [name for name, _, _ in log]
    first_q = order.index("q")
    assert first_q <= 3 and order[first_q : first_q + 2] == ["q", "q"]


def test_look_ahead_never_holds_every_worker():
    """With two workers, look-ahead steps run on one at a time, so a query that arrives starts at once
    instead of waiting for a look-ahead step to end; with nothing else queued the look-ahead job still
    finishes."""
    pool = ProvingPool(workers=2)
    st = _Steps(0.2)

    def wide():
        for _ in range(3):
            yield [lambda i=i: st.step(i) for i in range(4)]
        return "pads"

    bg = pool.submit(AHEAD, wide())
    time.sleep(0.05)
    t0 = time.perf_counter()
    q = pool.submit(QUERY, blocking_job(lambda: "q"))
    assert q.future.result(10) == "q"
    assert time.perf_counter() - t0 < 0.1  # not behind a 0.2 s look-ahead step
    assert bg.future.result(20) == "pads"
    assert st.peak == 1
    pool.shutdown()
    one = ProvingPool(workers=1)
    assert one.ahead_workers == 1  # one worker: look-ahead still runs
    one.shutdown()


def test_tables_run_before_look_ahead_as_background_work():
    """The MSM tables job (TABLES) runs before look-ahead PADs submitted earlier, after any query, and
    counts as background work: with two workers, tables and look-ahead steps together hold one, so a
    query starts at once."""
    pool = ProvingPool(workers=2)
    st = _Steps(0.1)

    def gen(name: str, stages: int, width: int = 1):
        for _ in range(stages):
            yield [lambda: st.step(name)] * width
        return name

    gate = threading.Event()
    blocker = pool.submit(URGENT, blocking_job(gate.wait, 5))  # holds one worker while the others queue
    ahead = pool.submit(AHEAD, gen("pad", 2, width=2))
    tables = pool.submit(TABLES, gen("tables", 3))
    gate.set()
    blocker.future.result(5)
    assert _until_true(lambda: st.now == 1)  # a background step is running
    seen = pool.submit(QUERY, blocking_job(lambda: st.now)).future.result(5)
    assert seen == 1  # the query ran beside it: the background work left a worker free
    assert tables.future.result(10) == "tables" and ahead.future.result(10) == "pad"
    assert st.names().index("pad") > st.names().index("tables")  # tables first, though submitted later
    assert st.peak == 1
    pool.shutdown()


def _until_true(pred, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not pred() and time.monotonic() < deadline:
        time.sleep(0.001)
    return pred()


def test_no_background_step_starts_beside_a_query():
    """While a query's proof is in progress (between its steps too), no look-ahead or table step
    starts, even with a worker free: the query's later stages get every worker; background work
    resumes once it is done."""
    pool = ProvingPool(workers=2)
    st = _Steps(0.03)

    def query():
        for i in range(4):  # one step per stage: the other worker is free in between
            yield [lambda i=i: st.step(f"q{i}")]
        return "q"

    def ahead():
        for i in range(6):
            yield [lambda i=i: st.step(f"pad{i}")]
        return "pad"

    q = pool.submit(QUERY, query())
    bg = pool.submit(AHEAD, ahead())
    tb = pool.submit(TABLES, _job([], "tables", stages=2))
    assert q.future.result(10) == "q" and bg.future.result(10) == "pad" and tb.future.result(10) == "tables"
    assert st.names()[:4] == ["q0", "q1", "q2", "q3"]  # no pad step between the query's stages
    assert not any(n.startswith("q") and len(r) > 1 for n, r in st.log)  # nothing ran beside it
    pool.shutdown()


def test_priority_change_and_order_within_priority():
    pool = ProvingPool(workers=1)
    log: list = []
    gate = threading.Event()
    blocker = pool.submit(URGENT, blocking_job(gate.wait, 5))
    a = pool.submit(AHEAD, _job(log, "a", stages=1))
    b = pool.submit(AHEAD, _job(log, "b", stages=1))
    c = pool.submit(OPENING, _job(log, "c", stages=1))
    b.set_priority(URGENT)  # a look-ahead job a query now needs
    gate.set()
    for j in (blocker, a, b, c):
        j.future.result(10)
    assert [x[0] for x in log] == ["b", "c", "a"]
    pool.shutdown()


def test_cancel_drops_queued_steps():
    pool = ProvingPool(workers=1)
    log: list = []
    job = pool.submit(OPENING, _job(log, "co", stages=20, dt=0.02))
    time.sleep(0.05)
    job.cancel()
    with pytest.raises(concurrent.futures.CancelledError):
        job.future.result(5)  # at once, not after the running step
    time.sleep(0.05)  # the step that was running ends
    n = len(log)
    time.sleep(0.1)
    assert len(log) == n and n < 6  # nothing started after the cancel
    # cancelling through the future does the same
    job2 = pool.submit(OPENING, _job(log, "co2", stages=20, dt=0.02))
    time.sleep(0.03)
    job2.future.cancel() or job2.cancel()
    time.sleep(0.1)
    assert sum(1 for x in log if x[0] == "co2") < 5
    q = pool.submit(QUERY, _job(log, "q", stages=1))
    assert q.future.result(5) == "q"  # the pool goes on
    pool.shutdown()


def test_step_error_ends_the_job_with_it():
    pool = ProvingPool(workers=2)

    def gen():
        yield [lambda: time.sleep(0.05), lambda: 1 / 0]
        yield [lambda: pytest.fail("the next stage must not run")]

    job = pool.submit(QUERY, gen())
    with pytest.raises(ZeroDivisionError):
        job.future.result(5)

    def bad():
        raise ValueError("in the generator")
        yield []

    with pytest.raises(ValueError):
        pool.submit(QUERY, bad()).future.result(5)
    pool.shutdown()


def test_shutdown_cancels_everything():
    pool = ProvingPool(workers=1)
    log: list = []
    jobs = [pool.submit(AHEAD, _job(log, f"j{i}", stages=5, dt=0.02)) for i in range(5)]
    time.sleep(0.03)
    pool.shutdown()
    for j in jobs:
        assert j.future.done()
    with pytest.raises(Exception):  # noqa: B017 - ZkmbError: shut down
        pool.submit(QUERY, _job(log, "late"))


def test_steps_run_with_one_numba_thread():
    import numba

    pool = ProvingPool(workers=2)
    job = pool.submit(QUERY, blocking_job(numba.get_num_threads))
    assert job.future.result(5) == 1
    pool.shutdown()


def test_real_proof_steps_equal_prove():
    """A Groth16 proof run as pool steps equals prove() for the same blinders."""
    from zkmb.groth16.prover import ProofPlan, prove
    from zkmb.groth16.setup import setup
    from zkmb.r1cs import Circuit, Public, Secret, compile

    class Mul(Circuit):
        x = Public()
        y = Secret()
        z = Secret()

        def define(self, api):
            acc = self.y
            for _ in range(3000):
                acc = api.mul(acc, self.z)
            api.assert_equal(acc, self.x)

    cs = compile(Mul())
    y, z = 3, 5
    pk, vk = setup(cs)
    from zkmb.algebra.params import R

    w = cs.solve({"x": y * pow(z, 3000, R) % R, "y": y, "z": z})

    def gen():
        plan = ProofPlan(pk, w, r=11, s=13, split=3)
        for stage in plan.stages:
            yield [st.run for st in stage]
        return plan.finish()

    pool = ProvingPool(workers=2)
    want = prove(pk, w, r=11, s=13).to_bytes()
    got = pool.submit(QUERY, gen()).future.result(60)
    assert got.to_bytes() == want
    # with MSM window tables (split steps read chunks of a table at an offset): the same proof
    for part in ("a", "b1", "b2", "c", "h"):
        pk.build_table(part)
    got = pool.submit(QUERY, gen()).future.result(60)
    assert got.to_bytes() == want
    pool.shutdown()


def test_tables_job_builds_query_tables_once():
    """The stub's table job builds every MSM table of the query keys (none for CO or PAD keys) as AHEAD
    steps, once; with tables turned off there is no job."""
    from zkmb.client_stub.prover import Groth16Prover

    from zkmb.groth16.keys import TABLE_PARTS
    from zkmb.groth16.setup import setup
    from zkmb.r1cs import Circuit, Public, Secret, compile

    class Sq(Circuit):
        x = Public()
        y = Secret()

        def define(self, api):
            api.assert_equal(api.mul(self.y, self.y), self.x)

    cs = compile(Sq())
    keys = {name: setup(cs)[0] for name in ("co_chacha20", "pad_block", "q_64", "q_128")}
    assert Groth16Prover(keys, tables=False).tables_job() is None
    prover = Groth16Prover(keys)
    pool = ProvingPool(workers=2)
    job = pool.submit(AHEAD, prover.tables_job(), "msm-tables")
    assert job.future.result(60) == 2 * len(TABLE_PARTS)
    pool.shutdown()
    assert set(keys["q_64"].tables) == set(keys["q_128"].tables) == set(TABLE_PARTS)
    assert not keys["co_chacha20"].tables and not keys["pad_block"].tables
    assert prover.tables_job() is None

    # one size class first (the stub's TABLES job), the others later
    keys = {name: setup(cs)[0] for name in ("co_chacha20", "pad_block", "q_64", "q_128")}
    prover = Groth16Prover(keys)
    assert _run_steps(prover.tables_job(["q_64"])) == len(TABLE_PARTS)
    assert set(keys["q_64"].tables) == set(TABLE_PARTS) and not keys["q_128"].tables
    assert _run_steps(prover.tables_job(["q_128"])) == len(TABLE_PARTS)
    assert prover.tables_job() is None


def _run_steps(gen):
    """Run a job generator's stages inline; its result."""
    try:
        stage = next(gen)
        while True:
            for step in stage:
                step()
            stage = gen.send(None)
    except StopIteration as stop:
        return stop.value


def test_stub_proofs_check_the_witness_in_the_qap_step():
    """The stub solves PAD and query witnesses unchecked and has the proof's QAP step check them against
    the circuit's C rows: a witness that does not satisfy the circuit raises (naming the constraint) and
    never becomes a proof; a channel opening's solver has no C (its check is the middlebox's)."""
    from zkmb.client_stub.prover import Groth16Prover, _run_inline

    from zkmb.groth16.prover import UnsatisfiedWitness
    from zkmb.groth16.setup import setup
    from zkmb.groth16.verifier import verify
    from zkmb.r1cs import Circuit, Public, Secret, compile

    class Sq(Circuit):
        x = Public()
        y = Secret()

        def define(self, api):
            with api.scope("square"):
                api.assert_equal(api.mul(self.y, self.y), self.x)

    cs = compile(Sq())
    pk, vk = setup(cs)
    prover = Groth16Prover({"co_chacha20": pk, "pad_block": pk, "q_64": pk}, tables=False)
    prover._cs["q_64"] = cs
    w = cs.solve({"x": 49, "y": 7})
    assert verify(vk, [49], _run_inline(prover._prove_steps("q_64", {"w": w})))
    with pytest.raises(UnsatisfiedWitness, match="constraint 0 in scope 'square'"):
        _run_inline(prover._prove_steps("q_64", {"w": w.replace(cs.n_wires - 1, 8)}))


def test_no_table_step_starts_while_held():
    """While the owner holds table steps off (a query whose jobs are not submitted yet), a free worker
    starts no MSM table step, but look-ahead PADs still run (they are the blocks the waiting queries
    need next); holds count, and the last release lets the tables run.  A release without a hold is
    an error, not a silent negative count."""
    from zkmb.errors import ZkmbError

    pool = ProvingPool(workers=2)
    st = _Steps(0.02)
    pool.hold_tables()
    with pool.tables_held():
        tables = pool.submit(TABLES, blocking_job(st.step, "tables"))
        bg = pool.submit(AHEAD, blocking_job(st.step, "pad"))
        assert bg.future.result(5) is None  # a look-ahead PAD is not held
        time.sleep(0.2)
        assert st.names() == ["pad"] and not tables.done
        assert pool.submit(OPENING, blocking_job(lambda: "co")).future.result(5) == "co"
    time.sleep(0.1)
    assert st.names() == ["pad"]  # one hold left
    pool.release_tables()
    assert tables.future.result(5) is None
    assert st.names() == ["pad", "tables"]
    with pytest.raises(ZkmbError, match="without a hold"):
        pool.release_tables()
    pool.shutdown()
