"""``python -m harness.csim.child``: one scenario in a fresh interpreter.

The sanitizer build (AddressSanitizer, UBSan) cannot be loaded into a running
interpreter: ASan's runtime must come first in the process, so the scenario
runs in a new process started with it preloaded. The job (callout spec,
faults, scenario, seed, output directory, attempt) arrives pickled on
standard input; the pickled result goes to the file named on the command line.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path


def main() -> int:
    from harness.csim import process
    from harness.scenario.loader import load_scenario
    from harness.targets.sim import SimTarget

    process.mark_child()
    spec, faults, scenario_path, seed, out_dir, attempt = pickle.loads(sys.stdin.buffer.read())
    result_path = Path(sys.argv[1])
    payload: tuple[str, object]
    try:
        target = SimTarget(spec, tuple(faults))
        scenario = load_scenario(Path(scenario_path))
        payload = ("ok", target.run(scenario, seed=seed, out_dir=Path(out_dir), attempt=attempt))
    except BaseException as exc:  # sent to the parent, raised there
        payload = ("err", (type(exc).__name__, str(exc)))
    result_path.write_bytes(pickle.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(main())
