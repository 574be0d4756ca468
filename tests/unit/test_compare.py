"""The regression gate on generated step-time samples with known properties."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.cli.main import main
from bench.core.errors import BenchInputError
from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.results.record import Record
from bench.results.store import save_run, to_frame
from bench.stats import compare

STEP = compare.Threshold("step_time_ms_median", 10.0)


def samples(seed, n=80, median=10.0, noise=0.02):
    rng = np.random.default_rng(seed)
    return median * (1 + noise * rng.standard_normal(n))


def frame(step_sets: dict[str, np.ndarray], status=None, warmup=10, **scalars) -> pd.DataFrame:
    rows = []
    for i, (cell, times) in enumerate(step_sets.items()):
        case = Case("torch", ModelSpec(cell, (8,)), TrainSpec(max_steps=len(times) + 1 + warmup))
        full = [500.0] + [50.0] * warmup + list(times)  # compile step and warm-up must be ignored
        rec = Record.for_case(case, "r", 1).with_measurements(
            {
                "status": (status or {}).get(cell, "ok"),
                "warmup_steps": warmup,
                "step_times_ms": full,
                "step_time_ms_median": float(np.median(times)),
                **{k: v[i] if isinstance(v, list) else v for k, v in scalars.items()},
            }
        )
        rows.append(rec.to_row())
    return to_frame(rows)


def verdicts(results):
    return {r.case_id.split("/")[1]: r.verdict for r in results}


def test_identical_distributions_never_regress_across_many_seeds():
    outcomes = [
        compare.compare_step_times("c", samples(2 * s), samples(2 * s + 1), pct=10.0).verdict for s in range(200)
    ]
    assert set(outcomes) == {"unchanged"}


def test_ten_percent_shift_with_low_noise_is_flagged():
    r = compare.compare_step_times("c", samples(0), samples(1) * 1.10, pct=5.0)
    assert r.verdict == "regression"
    assert 1.07 < r.ratio < 1.13 and r.ci_low > 1.05 and r.p_value < 1e-6


def test_three_percent_shift_is_not_flagged_at_ten_percent():
    r = compare.compare_step_times("c", samples(0), samples(1) * 1.03, pct=10.0)
    assert r.verdict == "unchanged"


def test_big_but_insignificant_shift_is_not_a_regression():
    # 3 samples each: a 20% gap but no evidence
    base, cur = np.array([10.0, 14.0, 8.0, 12.0, 9.0]), np.array([12.0, 9.0, 15.0, 11.0, 13.0])
    r = compare.compare_step_times("c", base, cur, pct=10.0, cv_limit=1.0)
    assert r.ratio > 1.1 and r.p_value > 0.01 and r.verdict == "unchanged"


def test_faster_is_improvement():
    assert compare.compare_step_times("c", samples(0), samples(1) * 0.8, pct=10.0).verdict == "improvement"


def test_noisy_case_is_inconclusive():
    r = compare.compare_step_times("c", samples(0, noise=0.5), samples(1) * 1.5, pct=10.0)
    assert r.verdict == "inconclusive" and "too noisy" in r.note


def test_missing_new_and_failed_cases():
    base = frame({"rnn": samples(0), "gru": samples(1), "lstm": samples(2)})
    cur = frame({"rnn": samples(3), "lstm": samples(4)}, status={"lstm": "timeout"})
    cur = pd.concat([cur, frame({"gru": samples(5)}).assign(case_id="torch/gru-new/x")])
    results = compare.compare_runs(base, cur, [STEP])
    v = {r.case_id: (r.verdict, r.note) for r in results}
    assert v[base.loc[0, "case_id"]][0] == "unchanged"
    assert v[base.loc[1, "case_id"]][0] == "missing"
    assert v[base.loc[2, "case_id"]] == ("regression", "ok in baseline, timeout now")
    assert v["torch/gru-new/x"][0] == "new"
    assert compare.gate_failed(results)
    assert {r.verdict for r in results} <= set(compare.VERDICTS)


def test_scalar_fields_use_direction():
    base = frame({"lstm": samples(0)}, test_accuracy=0.90, throughput_samples_per_s=1000.0, cpu_rss_peak_mb=500.0)
    cur = frame({"lstm": samples(1)}, test_accuracy=0.85, throughput_samples_per_s=1200.0, cpu_rss_peak_mb=520.0)
    ts = [compare.Threshold(f, 5.0) for f in ("test_accuracy", "throughput_samples_per_s", "cpu_rss_peak_mb")]
    got = {r.field: r.verdict for r in compare.compare_runs(base, cur, ts)}
    assert got == {
        "test_accuracy": "regression",
        "throughput_samples_per_s": "improvement",
        "cpu_rss_peak_mb": "unchanged",
    }


def test_normalize_divides_by_each_runs_calibration():
    base, cur = frame({"lstm": samples(0)}), frame({"lstm": samples(1) * 2.0})  # a machine twice as slow
    slow_meta, fast_meta = {"calibration": {"sgemm_ms": 2.0}}, {"calibration": {"sgemm_ms": 1.0}}
    assert verdicts(compare.compare_runs(base, cur, [STEP])) == {"lstm-uni-8x1": "regression"}
    assert verdicts(compare.compare_runs(base, cur, [STEP], fast_meta, slow_meta, normalize=True)) == {
        "lstm-uni-8x1": "unchanged"
    }
    with pytest.raises(BenchInputError, match="no SGEMM calibration"):
        compare.compare_runs(base, cur, [STEP], {}, slow_meta, normalize=True)
    gpu_base, gpu_cur = (f.assign(gpu_name="Fake H100") for f in (base, cur))  # a CPU SGEMM cannot scale a GPU
    (res,) = compare.compare_runs(gpu_base, gpu_cur, [STEP], fast_meta, slow_meta, normalize=True)
    assert res.verdict == "inconclusive" and "ran on a GPU" in res.note


def test_pct_of_sgemm_is_only_a_share_of_the_device_that_ran_the_case():
    from bench.measure.flops import sgemm_share

    assert sgemm_share(50.0, 200.0, on_gpu=False) == {"pct_of_sgemm": 25.0}
    gpu = sgemm_share(5000.0, 200.0, on_gpu=True)
    assert gpu["pct_of_sgemm"] is None and "the run's SGEMM calibration is the CPU's" in gpu["pct_of_sgemm_reason"]
    assert sgemm_share(50.0, None, on_gpu=False)["pct_of_sgemm"] is None


@pytest.mark.parametrize(
    "text", ["step_time_ms_median", "step_time_ms_median:ten%", "nosuch:10%", "median:10%", "step_time_ms_median:0%"]
)
def test_threshold_syntax_errors_name_the_accepted_syntax(text):
    with pytest.raises(BenchInputError) as exc:
        compare.Threshold.parse(text)
    assert "step_time_ms_median" in str(exc.value)


def test_threshold_parse():
    assert compare.Threshold.parse("throughput_samples_per_s:2.5%") == compare.Threshold(
        "throughput_samples_per_s", 2.5
    )


def test_environment_differences():
    a = {"threads": 2, "environment": {"cpu_model": "X", "packages": {"torch": "2.13.0"}}}
    b = {"threads": 4, "environment": {"cpu_model": "Y", "packages": {"torch": "2.14.1"}}}
    d = compare.environment_differences(a, b)
    assert "cpu_model: 'X' -> 'Y'" in d and "torch: 2.13.0 -> 2.14.1" in d and "threads: 2 -> 4" in d


def _save(tmp_path, name, df, meta=None):
    d = tmp_path / name
    d.mkdir()
    save_run(d, df, meta or {"calibration": {"sgemm_ms": 1.0}})
    return d


def test_cli_exit_codes_match_the_done_criteria(tmp_path, capsys):
    base_df = frame({"rnn": samples(0), "gru": samples(1), "lstm": samples(2)})
    base = _save(tmp_path, "base", base_df)
    scaled = lambda f: base_df.assign(step_times_ms=base_df["step_times_ms"].map(lambda t: tuple(x * f for x in t)))  # noqa: E731
    slow10, slow3 = _save(tmp_path, "slow10", scaled(1.10)), _save(tmp_path, "slow3", scaled(1.03))
    assert main(["compare", str(base), str(base)]) == 0
    assert main(["compare", str(base), str(slow10), "--fail", "step_time_ms_median:5%"]) == 1
    out = capsys.readouterr().out
    for cell in ("rnn", "gru", "lstm"):
        assert f"torch/{cell}-uni-8x1" in out
    assert main(["compare", str(base), str(slow3), "--fail", "step_time_ms_median:10%"]) == 0
    capsys.readouterr()
    assert main(["compare", str(base), str(slow10), "--format", "json", "--fail", "step_time_ms_median:5%"]) == 1
    payload = json.loads(capsys.readouterr().out)
    assert payload["failed"] and {c["verdict"] for c in payload["comparisons"]} == {"regression"}
    assert main(["compare", str(base), str(slow10), "--format", "markdown", "--fail", "step_time_ms_median:5%"]) == 1
    md = capsys.readouterr().out
    assert "| verdict |" in md and md.count("**regression**") == 3


def test_same_machine_turns_timing_verdicts_from_another_machine_inconclusive(tmp_path, capsys):
    base_df = frame({"rnn": samples(0), "gru": samples(1)}, test_accuracy=0.9)
    slow = base_df.assign(step_times_ms=base_df["step_times_ms"].map(lambda t: tuple(x * 1.5 for x in t)),
                          test_accuracy=0.5)
    intel = {"environment": {"cpu_model": "Intel Xeon", "cpu_cores": 2}}
    amd = {"environment": {"cpu_model": "AMD EPYC", "cpu_cores": 2}}
    base, cur = _save(tmp_path, "base", base_df, intel), _save(tmp_path, "cur", slow, amd)
    assert compare.machine_differences(intel, amd) == ["cpu_model: 'Intel Xeon' -> 'AMD EPYC'"]
    assert compare.machine_differences(intel, intel) == []
    assert main(["compare", str(base), str(cur)]) == 1  # without the flag, a 50% slowdown fails
    capsys.readouterr()
    assert main(["compare", str(base), str(cur), "--same-machine"]) == 0
    out = capsys.readouterr().out
    assert "not judged" in out and "regression" not in out.split("warning")[0]
    # accuracy is still judged on another machine: it does not depend on the processor's speed
    assert main(["compare", str(base), str(cur), "--same-machine", "--fail", "test_accuracy:1%"]) == 1
    capsys.readouterr()
    same = _save(tmp_path, "same", slow, intel)
    assert main(["compare", str(base), str(same), "--same-machine"]) == 1


def test_a_run_that_mixes_machines_is_named(tmp_path, capsys):
    df = frame({"rnn": samples(0), "gru": samples(1)})
    df = df.assign(host=["node-a", "node-b"], cpu_model=["X", "Y"])
    assert compare.mixed_machines(df) == "node-a, node-b; X, Y"
    assert compare.mixed_machines(df.assign(host="node-a", cpu_model="X")) is None
    run = _save(tmp_path, "mixed", df)
    assert main(["compare", str(run), str(run)]) == 0
    assert "mixes machines (node-a, node-b; X, Y)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--fail", "bogus"], "expected FIELD:PCT%"),
        (["--fail", "latency:5%"], "unknown field 'latency'"),
        (["--alpha", "2"], "--alpha 2.0: must be between 0 and 1"),
    ],
)
def test_cli_bad_input_is_exit_2(tmp_path, capsys, argv, fragment):
    base = _save(tmp_path, "b", frame({"rnn": samples(0)}))
    assert main(["compare", str(base), str(base), *argv]) == 2
    assert fragment in capsys.readouterr().err


def test_cli_unreadable_file_is_exit_2(tmp_path, capsys):
    bad = tmp_path / "results.parquet"
    bad.write_bytes(b"not parquet")
    assert main(["compare", str(bad), str(bad)]) == 2
    assert "cannot read results" in capsys.readouterr().err
