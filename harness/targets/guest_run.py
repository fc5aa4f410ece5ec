"""The harness inside a guest: run one scenario on the engine model there.

The ``linux-tcg`` profile carries the harness's own model into a real guest
(the Windows-specific steps swapped for their Linux equivalents): the VM
target copies a zipapp of the harness and the scenario file in over SFTP,
runs this entry point over SSH, and pulls back the trace and the steps'
observations. Standard library only: a guest has python3 and nothing else.

    python3 harness.pyz --scenario S.toml --seed N --out DIR [--callout SPEC]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

STEPS_FILE = "steps.json"


def main(argv: list[str] | None = None) -> int:
    from harness.errors import HarnessError
    from harness.scenario.loader import load_scenario
    from harness.targets.sim import SimTarget

    ap = argparse.ArgumentParser(prog="harness.pyz", description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", required=True, type=Path)
    ap.add_argument("--seed", required=True, type=int)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--callout", default="reference")
    ap.add_argument("--name", default="guest", help="the target name written in the trace")
    args = ap.parse_args(argv)
    try:
        scenario = load_scenario(args.scenario)
        args.out.mkdir(parents=True, exist_ok=True)
        target = SimTarget(callout=args.callout)
        target.name = args.name
        run = target.run(scenario, seed=args.seed, out_dir=args.out)
    except HarnessError as exc:
        print(f"harness.pyz: {exc}", file=sys.stderr)
        return 2
    steps = {name: {"outcome": r.outcome, "status": r.status, "detail": r.detail}
             for name, r in run.steps.items()}
    (args.out / STEPS_FILE).write_text(json.dumps(
        {"trace": run.trace_path.name, "steps": steps, "meta": run.meta}, indent=1))
    print(run.trace_path)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
