"""Every mistake a user can make on the command line ends in one clear line on stderr and a non-zero
exit status, never a traceback (issue #19).  Each case runs ``zkmb`` as a separate process, as a user
would, and fails before any key is loaded (so none of them takes more than a few seconds)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTICES = ("zkmb: compiling the numba kernels", "zkmb: numba kernels:")
"""Lines a cold numba cache adds to any first run (progress, not part of the error)."""


def run_zkmb(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "zkmb.cli", *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def assert_one_line_error(r: subprocess.CompletedProcess, *expected: str) -> str:
    """Non-zero exit, no traceback anywhere, exactly one line on stderr containing ``expected``."""
    assert r.returncode != 0, (r.stdout, r.stderr)
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith(NOTICES)]
    assert len(lines) == 1, r.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def rules(tmp_path) -> Path:
    p = tmp_path / "list.txt"
    p.write_text("evil.example\nbad.test\n")
    return p


@pytest.fixture
def policy(tmp_path, rules) -> Path:
    out = tmp_path / "p.zkmbp"
    r = run_zkmb("policy", "build", rules, "-o", out)
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture
def busy_port():
    """A loopback port that something else listens on."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen()
    yield s.getsockname()[1]
    s.close()


def _middlebox(*extra: str, keys, policy, listen="127.0.0.1:0") -> subprocess.CompletedProcess:
    return run_zkmb(
        "middlebox", "--listen", listen, "--proof-listen", "127.0.0.1:0", "--upstream", "127.0.0.1:853",
        "--keys", keys, "--key-check", "manifest", "--policy", policy, *extra,
    )  # fmt: skip


def test_policy_build_into_a_missing_directory(rules, tmp_path):
    r = run_zkmb("policy", "build", rules, "-o", tmp_path / "missing" / "dir" / "p")
    assert_one_line_error(r, "cannot write", "no directory")


def test_policy_build_into_an_unwritable_place(rules):
    r = run_zkmb("policy", "build", rules, "-o", "/proc/zkmb.p")
    assert_one_line_error(r, "cannot write /proc/zkmb.p")


@pytest.mark.parametrize("text", ["", "# only a comment\n\n"])
def test_policy_build_of_a_list_without_rules(tmp_path, text):
    src = tmp_path / "empty.txt"
    src.write_text(text)
    r = run_zkmb("policy", "build", src, "-o", tmp_path / "p.zkmbp")
    assert_one_line_error(r, "no rules in", "no policy written")
    assert not (tmp_path / "p.zkmbp").exists()


def test_policy_build_of_a_missing_file(tmp_path):
    r = run_zkmb("policy", "build", tmp_path / "nope.txt", "-o", tmp_path / "p.zkmbp")
    assert_one_line_error(r, "cannot read", "nope.txt")


def test_middlebox_on_a_busy_port(busy_port, policy, tmp_path):
    r = _middlebox(keys=tmp_path, policy=policy, listen=f"127.0.0.1:{busy_port}")
    assert_one_line_error(r, f"--listen 127.0.0.1:{busy_port}", "in use")


def test_middlebox_publish_on_a_busy_port(busy_port, policy, tmp_path):
    r = _middlebox("--publish", f"127.0.0.1:{busy_port}", keys=tmp_path, policy=policy)
    assert_one_line_error(r, "--publish", "in use")


def test_middlebox_listen_host_that_does_not_resolve(policy, tmp_path):
    r = _middlebox(keys=tmp_path, policy=policy, listen="no-such-host.invalid:8853")
    assert_one_line_error(r, "--listen", "cannot resolve", "no-such-host.invalid")


def test_middlebox_upstream_without_port(policy, tmp_path):
    r = run_zkmb(
        "middlebox", "--listen", "127.0.0.1:0", "--proof-listen", "127.0.0.1:0", "--upstream", "127.0.0.1",
        "--keys", tmp_path, "--policy", policy,
    )  # fmt: skip
    assert_one_line_error(r, "--upstream", "HOST:PORT")


def test_middlebox_without_a_key_directory(policy, tmp_path):
    r = _middlebox(keys=tmp_path / "nokeys", policy=policy)
    assert_one_line_error(r, "no such key directory", "zkmb setup")


@pytest.mark.parametrize(
    "files, missing",
    [
        (["q_64.vk"], ["co_chacha20.vk", "pad_block.vk"]),
        (["co_chacha20.vk", "pad_block.vk"], ["Q key"]),
        (["co_chacha20.vk", "q_64.vk"], ["pad_block.vk"]),
    ],
)
def test_middlebox_refuses_keys_that_cannot_enforce(policy, tmp_path, files, missing):
    """Only ``q_64.vk`` (the old behaviour: started, then failed every flow), or a suite without its PAD
    key, or no Q key at all: refused at start, naming what is missing."""
    keys = tmp_path / "keys"
    keys.mkdir()
    for f in files:
        (keys / f).write_bytes(b"")  # names are checked before any key is read
    line = assert_one_line_error(_middlebox(keys=keys, policy=policy), "cannot enforce any suite")
    for m in missing:
        assert m in line


def test_stub_relay_without_port(policy, tmp_path):
    r = run_zkmb(
        "stub", "--relay", "127.0.0.1", "--proof", "127.0.0.1:8854", "--server-name", "localhost",
        "--keys", tmp_path, "--policy", policy,
    )  # fmt: skip
    assert_one_line_error(r, "--relay", "HOST:PORT")


def test_stub_keys_directory_missing(policy, tmp_path):
    r = run_zkmb(
        "stub", "--relay", "127.0.0.1:8853", "--proof", "127.0.0.1:8854", "--server-name", "localhost",
        "--keys", tmp_path / "nokeys", "--policy", policy,
    )  # fmt: skip
    line = assert_one_line_error(r, "--keys", "no such directory")
    assert "srs.bin" not in line


def test_stub_policy_missing(tmp_path):
    r = run_zkmb(
        "stub", "--relay", "127.0.0.1:8853", "--proof", "127.0.0.1:8854", "--server-name", "localhost",
        "--keys", tmp_path, "--policy", tmp_path / "nope.zkmbp",
    )  # fmt: skip
    assert_one_line_error(r, "--policy", "no such file")


def test_resolver_on_a_busy_port(busy_port, tmp_path):
    r = run_zkmb("resolver", "--listen", f"127.0.0.1:{busy_port}", "--state-dir", tmp_path)
    assert_one_line_error(r, "cannot listen", "in use")


def test_policy_check_of_a_missing_file(tmp_path):
    r = run_zkmb("policy", "check", tmp_path / "nope.zkmbp", "example.com")
    assert_one_line_error(r, "cannot read")


def test_middlebox_policy_missing(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    for f in ("co_chacha20.vk", "pad_block.vk", "q_64.vk"):
        (keys / f).write_bytes(b"")
    r = _middlebox(keys=keys, policy=tmp_path / "nope.zkmbp")
    assert_one_line_error(r, "--policy", "no such file")


@pytest.mark.parametrize("make", [None, "file"])
def test_verify_keys_of_a_missing_directory(tmp_path, make):
    keys = tmp_path / "nokeys"
    if make == "file":
        keys.write_text("not a directory")
    r = run_zkmb("setup", "verify-keys", "--keys", keys, "--no-cache")
    line = assert_one_line_error(r, str(keys), "does not exist" if make is None else "is not a directory")
    assert "srs.bin" not in line
