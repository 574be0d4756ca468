"""The entry point of every job's process: `python -m bench.worker` (the protocol: bench/execution/worker.py).

It stays at this path across versions, because `bench ab` and `bench find` start the worker of other
revisions of this repository by this name.
"""

import os
import sys

from bench.execution.worker import main

if __name__ == "__main__":
    code = main(sys.argv[1:])
    # The result has been sent (and flushed): leave without the interpreter's teardown. A process holding
    # TensorFlow spent 1.3-1.5 s in it (its thread pools and atexit handlers), a cost every case paid in
    # wall time and nothing measured; nothing of the case's is left to clean up by then.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
