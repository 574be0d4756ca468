import time
from types import SimpleNamespace

import pytest

from bench.memory import GpuMemorySampler, peak_rss_mb, visible_devices

MB = 2**20


class NVMLError(Exception):
    pass


class FakeNvml:
    """Just enough of pynvml: GPUs (optionally with MIG instances), a process list that changes
    over time, an energy counter or only power readings."""

    def __init__(self, uuids=("GPU-aaaa", "GPU-bbbb"), procs=None, used=None, fail_init=None, mig=None, energy=True):
        self.uuids, self.procs, self.fail_init = uuids, procs or {}, fail_init
        self.used = used or {0: 1000 * MB}
        self.mig = mig or {}  # gpu index -> list of MIG uuids
        self.energy_mj, self.has_energy, self.watts = 5_000_000, energy, 250.0
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

    def nvmlDeviceGetName(self, h):
        return b"Fake H100"

    def nvmlDeviceGetUUID(self, h):
        return (self.mig[h[0]][h[1]] if isinstance(h, tuple) else self.uuids[h]).encode()

    def nvmlDeviceGetMigMode(self, h):
        if h == 1 and not self.mig:
            raise NVMLError("Not Supported")
        return (1, 1) if h in self.mig else (0, 0)

    def nvmlDeviceGetMaxMigDeviceCount(self, h):
        return 7

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h, j):
        if j >= len(self.mig[h]):
            raise NVMLError("Not Found")
        return (h, j)

    def nvmlDeviceGetMemoryInfo(self, h):
        return SimpleNamespace(used=self.used.get(h, 0))

    def nvmlDeviceGetComputeRunningProcesses(self, h):
        return [SimpleNamespace(pid=pid, usedGpuMemory=mem) for pid, mem in self.procs.get(h, [])]

    def nvmlDeviceGetTotalEnergyConsumption(self, h):
        if not self.has_energy:
            raise NVMLError("Not Supported")
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, h):
        return int(self.watts * 1000)


@pytest.fixture(autouse=True)
def _no_visible_devices_env(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_no_driver_is_a_reason_not_a_crash():
    nvml = FakeNvml(fail_init=RuntimeError("NVML Shared Library Not Found"))
    with GpuMemorySampler(nvml=nvml) as s:
        assert s.energy_j(s.mark(), s.mark())[0] is None
    r = s.result()
    assert r.process_peak_mb is None and r.device_peak_mb is None
    assert "NVML Shared Library Not Found" in r.reason


def test_peak_of_own_process_only():
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
    assert r.device.uuid == "GPU-aaaa" and not r.device.mig
    assert nvml.shutdowns == 1


def test_invisible_processes_fall_back_to_device_figure_and_say_so():
    with GpuMemorySampler(pids={111}, nvml=FakeNvml(procs={})) as s:
        pass
    r = s.result()
    assert r.process_peak_mb == 1000.0 and r.source == "nvml-device"
    assert "not visible" in r.reason


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ["GPU-aaaa", "GPU-bbbb"]),
        ("1", ["GPU-bbbb"]),
        ("1,0", ["GPU-bbbb", "GPU-aaaa"]),
        ("GPU-bbbb", ["GPU-bbbb"]),
        ("GPU-bb", ["GPU-bbbb"]),
        ("GPU-", []),
        ("-1", []),
        ("", []),
        ("0,7,1", ["GPU-aaaa"]),
        ("MIG-zzzz", []),
    ],
)
def test_visible_devices_honour_cuda_visible_devices(monkeypatch, value, expected):
    if value is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert [d.uuid for d in visible_devices(FakeNvml())] == expected


def test_mig_instances_are_resolved_by_uuid(monkeypatch):
    nvml = FakeNvml(mig={0: ["MIG-1111", "MIG-2222"]}, procs={(0, 1): [(5, 20 * MB)]}, used={(0, 1): 40 * MB})
    # unset: CUDA uses the MIG instances of a MIG-enabled GPU, and plain GPUs as they are
    assert [d.uuid for d in visible_devices(nvml)] == ["MIG-1111", "MIG-2222", "GPU-bbbb"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-2222")
    with GpuMemorySampler(pids={5}, nvml=nvml) as s:
        pass
    r = s.result()
    assert r.device.mig and r.device.uuid == "MIG-2222" and r.device.name == "Fake H100 MIG 1"
    assert (r.process_peak_mb, r.device_peak_mb) == (20.0, 40.0)


def test_sampler_measures_the_first_visible_device(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    nvml = FakeNvml(procs={1: [(5, 64 * MB)]}, used={0: 9000 * MB, 1: 128 * MB})
    with GpuMemorySampler(pids={5}, nvml=nvml) as s:
        pass
    assert s.result().process_peak_mb == 64.0 and s.result().device_peak_mb == 128.0


def test_hidden_gpus_reported(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    with GpuMemorySampler(nvml=FakeNvml()) as s:
        pass
    assert "no GPU visible" in s.result().reason


def test_energy_from_the_counter():
    nvml = FakeNvml()
    with GpuMemorySampler(nvml=nvml) as s:
        a = s.mark()
        nvml.energy_mj += 12_345
        b = s.mark()
    assert s.energy_j(a, b) == (12.345, "nvml-energy-counter")


def test_energy_from_power_sampling_without_a_counter():
    nvml = FakeNvml(energy=False)
    with GpuMemorySampler(nvml=nvml, period_s=0.002) as s:
        a = s.mark()
        time.sleep(0.1)
        b = s.mark()
    joules, source = s.energy_j(a, b)
    assert source == "nvml-power-sampling"
    assert joules == pytest.approx(250.0 * (b[0] - a[0]), rel=0.15)  # 250 W over the window


def test_peak_rss_is_positive_megabytes():
    assert 1 < peak_rss_mb() < 100_000
