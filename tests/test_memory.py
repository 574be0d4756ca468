import time
from types import SimpleNamespace

import pytest

from bench.memory import GpuMemorySampler, peak_rss_mb, visible_device_indices

MB = 2**20


class FakeNvml:
    """Just enough of pynvml: two GPUs, a process list that changes over time."""

    def __init__(self, uuids=("GPU-aaaa", "GPU-bbbb"), procs=None, used=(1000 * MB, 0), fail_init=None):
        self.uuids, self.procs, self.used, self.fail_init = uuids, procs or {}, used, fail_init
        self.shutdowns = 0

    def nvmlInit(self):
        if self.fail_init:
            raise self.fail_init

    def nvmlShutdown(self):
        self.shutdowns += 1

    def nvmlDeviceGetCount(self):
        return len(self.uuids)

    def nvmlDeviceGetHandleByIndex(self, i):
        return i

    def nvmlDeviceGetUUID(self, h):
        return self.uuids[h].encode()

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=self.used[h])

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=pid, usedGpuMemory=mem) for pid, mem in self.procs.get(h, [])]


def test_no_driver_is_a_reason_not_a_crash():
    nvml = FakeNvml(fail_init=RuntimeError("NVML Shared Library Not Found"))
    with GpuMemorySampler(nvml=nvml) as s:
        pass
    r = s.result()
    assert r.process_peak_mb is None and r.device_peak_mb is None
    assert "NVML Shared Library Not Found" in r.reason


def test_peak_of_own_process_only(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    nvml = FakeNvml(procs={0: [(111, 300 * MB), (999, 5000 * MB)]})
    with GpuMemorySampler(pids={111}, period_s=0.001, nvml=nvml) as s:
        nvml.procs = {0: [(111, 700 * MB), (999, 5000 * MB)]}
        time.sleep(0.02)
        nvml.procs = {0: [(999, 5000 * MB)]}  # our process left
        time.sleep(0.01)
    r = s.result()
    assert r.process_peak_mb == 700.0
    assert r.device_peak_mb == 1000.0
    assert r.source == "nvml-process" and r.reason is None
    assert nvml.shutdowns == 1


def test_invisible_processes_fall_back_to_device_figure_and_say_so(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with GpuMemorySampler(pids={111}, nvml=FakeNvml(procs={})) as s:
        pass
    r = s.result()
    assert r.process_peak_mb == 1000.0 and r.source == "nvml-device"
    assert "not visible" in r.reason


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, [0, 1]),
        ("1", [1]),
        ("1,0", [1, 0]),
        ("GPU-bbbb", [1]),
        ("GPU-bb", [1]),
        ("-1", []),
        ("", []),
        ("0,7,1", [0]),
        ("MIG-zzzz", []),
    ],
)
def test_visible_devices_honour_cuda_visible_devices(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert visible_device_indices(FakeNvml()) == expected


def test_sampler_measures_the_first_visible_device(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    nvml = FakeNvml(procs={1: [(5, 64 * MB)]}, used=(9000 * MB, 128 * MB))
    with GpuMemorySampler(pids={5}, nvml=nvml) as s:
        pass
    assert s.result().process_peak_mb == 64.0 and s.result().device_peak_mb == 128.0


def test_hidden_gpus_reported(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    with GpuMemorySampler(nvml=FakeNvml()) as s:
        pass
    assert "no GPU visible" in s.result().reason


def test_peak_rss_is_positive_megabytes():
    assert 1 < peak_rss_mb() < 100_000
