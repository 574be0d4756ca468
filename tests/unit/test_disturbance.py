"""What else used the machine while a case's steps were timed (bench/measure/disturbance.py)."""

import json
import os
import subprocess
import sys
import time

import pytest

from bench.measure import disturbance as D

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc (Linux)")


def test_machine_ticks_read_busy_and_steal_from_the_first_line():
    stat = "cpu  100 5 50 1000 7 3 2 11 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
    assert D.machine_ticks(stat) == (100 + 5 + 50 + 3 + 2, 11)  # user nice system irq softirq; steal
    assert D.machine_ticks("garbage") is None


def test_the_process_tree_counts_a_busy_child():
    before = D.tree_ticks()
    child = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<0.6: pass"])
    time.sleep(0.4)
    during = D.tree_ticks()
    child.wait()
    assert during - before >= 0.2 * os.sysconf("SC_CLK_TCK")  # the child's spinning is the tree's own time


def test_a_burner_outside_the_case_is_disturbance(tmp_path):
    """The meter in a process of its own (a case) and a burner that is not its descendant: flagged."""
    script = ("import json, time\nfrom bench.measure.disturbance import LoadMeter\nm = LoadMeter()\nm.open()\n"
              "time.sleep(1.0)\nm.close()\nprint(json.dumps(m.columns()))")
    burner = subprocess.Popen([sys.executable, "-c", "import time\nt=time.time()\nwhile time.time()-t<6: pass"])
    try:
        time.sleep(0.3)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    finally:
        burner.kill()
        burner.wait()
    cols = json.loads(out.stdout)
    assert cols["other_cpu_cores"] > 0.5 and cols["disturbed"] is True
    assert "other processes kept" in cols["disturbed_reason"]


def test_without_a_window_nothing_is_claimed_and_a_shared_gpu_disturbs():
    cols = D.LoadMeter().columns()
    assert cols["disturbed"] is None and "was not read" in cols["disturbed_reason"]
    assert D.LoadMeter().columns("pid 42 (100 MB)") == {
        "disturbed": True, "disturbed_reason": "another process shared the GPU: pid 42 (100 MB)"}
