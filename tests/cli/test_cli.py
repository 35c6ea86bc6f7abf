"""The zkmb front door: version, circuits listing, errors."""

from __future__ import annotations

import json

import pytest

from zkmb import __version__
from zkmb.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert __version__ in capsys.readouterr().out


def test_circuits_json(capsys):
    assert main(["circuits", "--json", "sha256_compress", "aes128_block"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["sha256_compress"]["constraints"] == 26_218
    assert out["aes128_block"]["constraints"] == 8_040


def test_circuits_unknown_name(capsys):
    assert main(["circuits", "no_such_circuit"]) == 1
    assert "unknown circuit" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
