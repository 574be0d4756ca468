"""What one NVML sample costs the sampler thread, on a fake GPU (issue: "the sampler's cost per sample
is measured and stated"). A sample is one memory reading; every PROCESSES_EVERY-th also the process
list, every STATE_EVERY-th also clocks, temperature, power and clock-event reasons. The fake answers instantly, so
this is the Python cost; a real NVML call adds its own (tens of microseconds each on a data-centre GPU).
Run with: python -m pytest -m perf tests/benchmarks/test_sampler_cost.py -s -n 0
"""

import pytest

from bench.measure.memory import STATE_EVERY, GpuMemorySampler
from tests.unit.test_memory import MB, FakeNvml

pytestmark = pytest.mark.perf


def test_sampler_cost_per_sample(benchmark):
    nvml = FakeNvml(procs={0: [(111, 300 * MB), (4242, 512 * MB)]})
    with GpuMemorySampler(pids={111}, period_s=60, nvml=nvml) as s:
        benchmark.pedantic(s._sample, rounds=200, iterations=STATE_EVERY * 10)
    per_sample_us = benchmark.stats.stats.median * 1e6
    print(f"\nsampler: {per_sample_us:.1f} us per sample (state read every {STATE_EVERY}th), "
          f"{per_sample_us / 1e4 * 100:.2f}% of its 10 ms period")
    assert per_sample_us < 1000  # far below the 10 ms period: the thread sleeps >90% of the time
