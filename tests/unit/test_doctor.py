"""`bench doctor`'s judgements on facts of known machines (bench/measure/doctor.py)."""

import math

from bench.measure import doctor
from tests.unit.test_memory import FakeNvml

CPU_MACHINE = {"cpu_model": "x", "cpu_cores": 2, "cpu_governor": None, "torch": "2.13.0+cpu", "python": "3.11",
               "other_cpu_cores": 0.02}
NO_GPU = {"available": False, "reason": "NVML unavailable (...): no NVIDIA GPU or driver"}


def test_a_quiet_cpu_machine_has_nothing_to_warn_about():
    assert doctor.warnings(CPU_MACHINE, NO_GPU, {}) == []
    assert doctor.exit_status("auto", NO_GPU, {}) == (0, None)


def test_what_a_user_should_read_before_trusting_a_figure():
    machine = {**CPU_MACHINE, "cpu_governor": "powersave", "torch": "2.14.1+cu130"}
    out = doctor.warnings(machine, NO_GPU, {})
    assert "governor 'powersave'" in out[0]
    assert "torch 2.14.1+cu130 is a CUDA build on a machine without an NVIDIA GPU" in out[1]
    busy = doctor.warnings({**CPU_MACHINE, "other_cpu_cores": 1.04}, NO_GPU, {})
    assert busy and busy[0].startswith("the machine is busy: other processes kept 1.04 cores busy")
    gpu = {"available": True, "other_processes": [4242], "clock_events": ["gpu_idle", "sw_thermal_slowdown"],
           "energy_period_ms": math.inf}
    probes = {"torch": {"uses_gpu": True, "nvml_sees_pid": False}}
    out = doctor.warnings(CPU_MACHINE, gpu, probes)
    assert any("other processes [4242]" in w for w in out)
    assert any("throttled right now (sw_thermal_slowdown)" in w for w in out)
    assert any("energy counter did not move" in w for w in out)
    assert any(w.startswith("torch: NVML does not list this process's pid") for w in out)


def test_device_cuda_exits_1_where_no_gpu_can_be_measured():
    code, why = doctor.exit_status("cuda", NO_GPU, {"torch": {"uses_gpu": False}})
    assert code == 1 and "no GPU can be measured here" in why
    code, why = doctor.exit_status("cuda", {"available": True}, {"torch": {"uses_gpu": False}})
    assert code == 1 and "no adapter sees a CUDA GPU" in why
    assert doctor.exit_status("cuda", {"available": True}, {"torch": {"uses_gpu": True}}) == (0, None)


def test_nvml_facts_read_the_energy_counter_s_period_and_the_refused_queries():
    nvml = FakeNvml(procs={0: [(4242, 1)]})
    real = nvml.nvmlDeviceGetTotalEnergyConsumption

    def ticking(h):  # a counter that moves every call
        nvml.energy_mj += 1
        return real(h)

    nvml.nvmlDeviceGetTotalEnergyConsumption = ticking
    nvml.nvmlSystemGetDriverVersion = lambda: b"580.1"
    facts = doctor.nvml_facts(nvml, watch_s=0.05)
    assert facts["available"] and facts["driver"] == "580.1" and facts["gpus"][0]["name"] == "Fake H100"
    assert 0 < facts["energy_period_ms"] < 50 and facts["refused_queries"] == []
    assert facts["other_processes"] == [4242]
    quiet = FakeNvml(energy=False)
    quiet.nvmlSystemGetDriverVersion = lambda: "580.1"
    facts = doctor.nvml_facts(quiet, watch_s=0.01)
    assert facts["refused_queries"] == ["energy counter"] and facts["energy_period_ms"] is None
