"""The entry point of every job's process: `python -m bench.worker` (the protocol: bench/execution/worker.py).

It stays at this path across versions, because `bench ab` and `bench find` start the worker of other
revisions of this repository by this name.
"""

import sys

from bench.execution.worker import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
