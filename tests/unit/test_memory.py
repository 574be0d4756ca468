import os
import time
from types import SimpleNamespace

import pytest

from bench.measure.memory import GpuMemorySampler, device_used_mb, peak_rss_mb, visible_devices

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

    # GPU state, scriptable: set the attributes, or put a name in `unsupported` to raise NotSupported
    sm_mhz, mem_mhz, temp_c, limit_w, reasons = 1980, 2619, 60, 700.0, 0x1
    unsupported: frozenset = frozenset()

    def _maybe(self, name, value):
        self.calls = getattr(self, "calls", {})
        self.calls[name] = self.calls.get(name, 0) + 1
        if name in self.unsupported:
            raise NVMLError_NotSupported("Not Supported")
        return value

    def nvmlDeviceGetClockInfo(self, h, kind):
        return self._maybe("clock", {1: self.sm_mhz, 2: self.mem_mhz}[kind])

    def nvmlDeviceGetTemperature(self, h, sensor):
        return self._maybe("temperature", self.temp_c)

    def nvmlDeviceGetEnforcedPowerLimit(self, h):
        return self._maybe("limit", int(self.limit_w * 1000))

    def nvmlDeviceGetCurrentClocksEventReasons(self, h):
        return self._maybe("reasons", self.reasons)


class NVMLError_NotSupported(NVMLError):  # noqa: N801 (pynvml's own class name)
    pass


class OldNvml(FakeNvml):
    """A pynvml from before the clock-event rename: only ...ThrottleReasons."""

    nvmlDeviceGetCurrentClocksEventReasons = None

    def nvmlDeviceGetCurrentClocksThrottleReasons(self, h):
        return self.reasons


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


def test_the_device_fallback_reports_the_case_s_increase_over_its_baseline():
    nvml = FakeNvml(procs={}, used={0: 700 * MB})  # the driver's reserve and another tenant, before the case
    baseline = device_used_mb(nvml)
    nvml.used[0] = 1900 * MB  # the case made its context and trained
    with GpuMemorySampler(pids={111}, nvml=nvml, baseline_mb=baseline) as s:
        pass
    r = s.result()
    assert baseline == 700.0 and r.source == "nvml-device-increase"
    assert (r.process_peak_mb, r.device_peak_mb) == (1200.0, 1900.0)
    assert "less the 700 MB in use before the case started" in r.reason
    assert device_used_mb(FakeNvml(fail_init=RuntimeError("no driver"))) is None


def test_power_is_sampled_even_when_every_process_query_fails():
    nvml = FakeNvml(energy=False)
    nvml.nvmlDeviceGetComputeRunningProcesses = lambda h: (_ for _ in ()).throw(NVMLError("Unknown Error"))
    with GpuMemorySampler(nvml=nvml, period_s=0.001) as s:
        a = s.mark()
        time.sleep(0.05)
        b = s.mark()
    joules, source = s.energy_j(a, b)
    assert source == "nvml-power-sampling" and joules == pytest.approx(250.0 * (b[0] - a[0]), rel=0.3)


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


def _window(nvml, steps):
    """Run the sampler around a scripted window: `steps` are attribute changes, one mark after each."""
    with GpuMemorySampler(pids={111}, period_s=60, nvml=nvml) as s:  # no thread sample: only the marks
        start = s.mark()
        for change in steps:
            for k, v in change.items():
                setattr(nvml, k, v)
            end = s.mark()
    return s, start, end


def test_gpu_state_over_the_training_window_min_median_max():
    nvml = FakeNvml(procs={0: [(111, 100 * MB)]})
    s, start, end = _window(nvml, [{"sm_mhz": 1700, "temp_c": 70, "watts": 400.0},
                                   {"sm_mhz": 1500, "temp_c": 83, "watts": 690.0, "reasons": 0x4 | 0x1}])
    st = s.state(start, end)
    # three readings in the window (start mark, then one mark per change): 1980, 1700, 1500 MHz
    assert st["gpu_state_samples"] == 3
    assert (st["gpu_sm_clock_mhz_min"], st["gpu_sm_clock_mhz_median"], st["gpu_sm_clock_mhz_max"]) == (1500, 1700, 1980)
    assert st["gpu_mem_clock_mhz_median"] == 2619
    assert (st["gpu_temp_c_median"], st["gpu_temp_c_max"]) == (70, 83)
    assert (st["gpu_power_w_median"], st["gpu_power_w_max"], st["gpu_power_limit_w"]) == (400.0, 690.0, 700.0)
    assert st["gpu_throttled"] is True and st["gpu_throttle_reasons"] == "gpu_idle, sw_power_cap"


@pytest.mark.parametrize("mask, throttled, names", [
    (0x0, False, ""),
    (0x1, False, "gpu_idle"),  # idle or an application clock setting does not slow a busy GPU's steps
    (0x2 | 0x10, False, "applications_clocks_setting, sync_boost"),
    (0x8, True, "hw_slowdown"),
    (0x20 | 0x40, True, "sw_thermal_slowdown, hw_thermal_slowdown"),
    (0x80, True, "hw_power_brake_slowdown"),
])
def test_throttle_reason_bits(mask, throttled, names):
    nvml = FakeNvml(procs={0: [(111, MB)]})
    nvml.reasons = mask
    s, start, end = _window(nvml, [{}])
    st = s.state(start, end)
    assert st["gpu_throttled"] is throttled and st["gpu_throttle_reasons"] == names


def test_a_reason_outside_the_window_does_not_count():
    nvml = FakeNvml(procs={0: [(111, MB)]})
    nvml.reasons = 0x40  # hot before the window (the sampler's first reading)
    with GpuMemorySampler(pids={111}, period_s=60, nvml=nvml) as s:
        time.sleep(0.002)
        nvml.reasons = 0x1
        start = s.mark()
        end = s.mark()
    assert s.state(start, end)["gpu_throttled"] is False


def test_unsupported_queries_give_none_and_are_asked_once():
    nvml = FakeNvml(procs={0: [(111, MB)]})
    nvml.unsupported = frozenset({"clock", "temperature", "limit", "reasons"})
    s, start, end = _window(nvml, [{}, {}, {}])
    st = s.state(start, end)
    assert st["gpu_sm_clock_mhz_median"] is None and st["gpu_temp_c_max"] is None
    assert st["gpu_power_limit_w"] is None and st["gpu_power_w_median"] == 250.0  # power still read
    assert st["gpu_throttled"] is None and st["gpu_throttle_reasons"] is None  # unknown, not "no"
    assert nvml.calls["clock"] == 2 and nvml.calls["reasons"] == 1 and nvml.calls["limit"] == 1  # SM and memory clock: once each


def test_old_pynvml_throttle_reasons_name():
    nvml = OldNvml(procs={0: [(111, MB)]})
    nvml.reasons = 0x4
    s, start, end = _window(nvml, [{}])
    assert s.state(start, end)["gpu_throttle_reasons"] == "sw_power_cap"


def test_other_processes_on_the_gpu_are_named_with_their_peak_memory():
    nvml = FakeNvml(procs={0: [(111, 100 * MB), (4242, 512 * MB)]})
    with GpuMemorySampler(pids={111}, period_s=60, nvml=nvml) as s:
        nvml.procs = {0: [(111, 100 * MB), (4242, 2048 * MB), (77, None)]}
        s.mark()
        s._sample()
    assert s.shared_with() == "pid 77 (? MB), pid 4242 (2048 MB)"


def test_alone_on_the_gpu_shares_with_nobody():
    with GpuMemorySampler(pids={111}, period_s=60, nvml=FakeNvml(procs={0: [(111, MB)]})) as s:
        pass
    assert s.shared_with() is None


def test_pid_namespace_one_unknown_process_may_be_this_one():
    with GpuMemorySampler(pids={111}, period_s=60, nvml=FakeNvml(procs={0: [(90001, MB)]})) as s:
        pass
    assert s.shared_with() is None  # cannot tell: the only process may be this one under another pid
    with GpuMemorySampler(pids={111}, period_s=60, nvml=FakeNvml(procs={0: [(90001, MB), (90002, MB)]})) as s:
        pass
    assert "another namespace" in s.shared_with()


def test_no_gpu_state_without_a_gpu():
    with GpuMemorySampler(nvml=FakeNvml(fail_init=RuntimeError("no driver"))) as s:
        a, b = s.mark(), s.mark()
    assert s.state(a, b) == {} and s.shared_with() is None


def _gpu_job(require_idle):
    from bench import data
    from bench.core.specs import Case, ModelSpec, TrainSpec
    from bench.execution.jobs import CaseJob

    case = Case("fake-gpu", ModelSpec("gru", (8,)), TrainSpec(max_steps=12, warmup_steps=2, phase_rounds=0),
                dataset="synthetic")
    return CaseJob(case, data.resolve("synthetic"), 1, "r", require_idle_gpu=require_idle)


@pytest.mark.parametrize("require_idle", [False, True])
def test_case_on_a_shared_gpu_is_recorded_or_failed(monkeypatch, fake_adapters, require_idle):
    from bench.measure import memory
    from bench.measure.case import measure_case

    nvml = FakeNvml(procs={0: [(os.getpid(), 300 * MB), (4242, 512 * MB)]})
    nvml.reasons = 0x20
    monkeypatch.setattr(memory, "_import_nvml", lambda: nvml)
    measured = measure_case(_gpu_job(require_idle))
    assert measured["gpu_shared_with"] == "pid 4242 (512 MB)"
    if require_idle:
        assert measured["status"] == "failed"
        assert "--require-idle-gpu" in measured["error"] and "at the start" in measured["error"]
        assert "step_times_ms" not in measured  # never timed on a shared device
    else:
        assert measured["status"] == "ok" and measured["gpu_mem_peak_mb"] == 300.0
        assert measured["gpu_throttled"] is True and measured["gpu_throttle_reasons"] == "sw_thermal_slowdown"
        assert measured["gpu_sm_clock_mhz_median"] == 1980 and measured["gpu_state_samples"] >= 1  # the first timed step's edge


def test_energy_per_step_counts_the_timed_steps_only_not_compilation_or_evaluations(monkeypatch, fake_adapters):
    from bench import data
    from bench.core.specs import Case, ModelSpec, TrainSpec
    from bench.execution.jobs import CaseJob
    from bench.measure import memory
    from bench.measure.case import measure_case
    from tests.fake_adapters import EnergyGpuAdapter

    nvml = FakeNvml(procs={0: [(os.getpid(), 300 * MB)]})
    monkeypatch.setattr(memory, "_import_nvml", lambda: nvml)
    monkeypatch.setattr(EnergyGpuAdapter, "nvml", nvml)
    # 16 steps: step 0, 3 warm-up, 12 timed; the test split is evaluated after steps 4, 8 and 12
    case = Case("fake-gpu-energy", ModelSpec("gru", (8,)),
                TrainSpec(max_steps=16, warmup_steps=3, phase_rounds=0, eval_every=4), dataset="mnist-5k")
    measured = measure_case(CaseJob(case, data.resolve("mnist-5k"), 1, "r"))
    assert measured["status"] in ("ok", "inconclusive"), measured.get("error")  # the fake predicts nothing
    assert len(measured["curve_steps"]) == 4  # 3 during training, the final one
    # the window opens after step 0 and the 3 warm-up steps: 12 steps of 1 J; 100 J of compilation and
    # 3 x 50 J of evaluations inside the window are not training
    assert measured["energy_j_per_step"] == pytest.approx(1.0)
    assert "over the 12 steps after step 0 and the warm-up" in measured["energy_source"]


def test_the_sampler_reads_the_process_list_every_5th_sample_and_the_state_every_10th():
    from bench.measure.memory import PROCESSES_EVERY, STATE_EVERY

    nvml = FakeNvml(procs={0: [(os.getpid(), 300 * MB)]})
    counts = {"memory": 0, "processes": 0, "clocks": 0}
    for name, attr in (("memory", "nvmlDeviceGetMemoryInfo"), ("processes", "nvmlDeviceGetComputeRunningProcesses"),
                       ("clocks", "nvmlDeviceGetClockInfo")):
        real = getattr(nvml, attr)
        setattr(nvml, attr, lambda *a, _r=real, _n=name: counts.__setitem__(_n, counts[_n] + 1) or _r(*a))
    s = GpuMemorySampler(nvml=nvml, period_s=3600)  # no thread ticks: drive the samples by hand
    s.__enter__()  # one sample
    for _ in range(99):
        s._sample()
    s.__exit__(None, None, None)  # and the last, which reads everything
    assert (PROCESSES_EVERY, STATE_EVERY) == (5, 10)
    assert counts["memory"] == 101 and counts["processes"] == 100 // 5 + 1
    assert counts["clocks"] == 2 * 11  # SM and memory clocks at samples 0, 10, ..., 100 of the 101
    assert s.result().process_peak_mb == 300.0
