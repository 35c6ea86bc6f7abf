"""``python -m tests.interop.middlebox_main --co-deadline S -- ARGS``: ``zkmb middlebox ARGS`` whose flows
get a CO deadline of S seconds instead of SPEC §2's [20 s].

Only for tests on a machine too busy to prove CO within 20 s (a shared 2-core CI machine: ~15 s measured
under load 5): the interop matrix tests the resolvers, whose idle time-outs stay at their defaults.
``zkmb middlebox`` has no option for the CO deadline, so this sets the default of ``FlowConfig`` before
the command builds one.  Everything else is the real command.
"""

from __future__ import annotations

import dataclasses
import sys


def main(argv: list[str]) -> int:
    sep = argv.index("--")
    own, rest = argv[:sep], argv[sep + 1 :]
    seconds = float(own[own.index("--co-deadline") + 1])

    import zkmb.middlebox.flow as flow

    base = flow.FlowConfig

    @dataclasses.dataclass(frozen=True)
    class FlowConfig(base):  # type: ignore[misc,valid-type]
        co_deadline: float = seconds

    flow.FlowConfig = FlowConfig  # the command imports it from the module when it runs
    print(f"middlebox_main: CO deadline {seconds:g} s (test set-up)", file=sys.stderr, flush=True)

    from zkmb.cli import main as zkmb_main

    return zkmb_main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
