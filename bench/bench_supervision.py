"""Supervision against supervisord: start 100, kill -9 and restart, stop all.

100 process agents under one orchestrator against supervisord 4.x with 100 programs
running the same Python, on the same machine in the same run; see
``bench/_supervision.py`` for what is timed and how.

Run: ``python bench/bench_supervision.py [--quick] [--agents N] [--cycles N]
[--kills N] [--supervisord always|auto|never]``.
"""

# Only this: every forkserver child re-runs this file's top level (as __mp_main__),
# once per agent start, so the code lives in bench/_supervision.py. A full script
# here (compiled from source, argparse imported) cost each start about 10 ms of CPU.

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":
    from bench._supervision import main

    sys.exit(main())
