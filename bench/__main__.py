"""`make bench`: every benchmark, ratios against baselines measured in the same run.

Results are also written to bench/results/<timestamp>.json for comparison across commits.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from bench import execution, fanout, memory, throughput


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results: dict[str, Any] = {}
    start = time.time()
    print(f"{'benchmark':<46} {'rlef':>12}  {'baseline':>18}  ratio")
    execution.run(results, quick=args.quick)
    throughput.run(results, quick=args.quick)
    fanout.run(results, quick=args.quick)
    memory.run(results, quick=args.quick)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    path = out / f"{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"commit": commit, "machine": platform.node(),
                                "seconds": time.time() - start, "results": results}, indent=2))
    print(f"\nwrote {path} ({time.time() - start:.0f} s)")


if __name__ == "__main__":
    main()
