"""The reference cases of docs/reference-cases.md: the four tutorials rnnbench reproduces, and what they report.

Each case is configured exactly as its tutorial states: layers, units, activations, dropout,
optimizer (with each framework's own default Adam epsilon), learning-rate schedule, batch size,
epochs or steps, evaluation batch. The reported figures are the tutorials' own, for full MNIST
(60,000 / 10,000); the `seeds` matrix prints them beside what it measures.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from bench.core.specs import Case, ModelSpec, TrainSpec
from bench.data import TEST_SIZES, TRAIN_SIZES

REFERENCE_DATASET = "mnist"  # every reported figure is for full MNIST
RATIO_BASE = "D1"  # case D reports CPU step times; only ratios between its cases carry across machines

# Each framework's own Adam epsilon, as the tutorials leave it at the default.
KERAS_EPS, TORCH_EPS, TF1_EPS = 1e-7, 1e-8, 1e-8

_A = TrainSpec(batch_size=64, epochs=10, learning_rate=1e-3, adam_epsilon=KERAS_EPS, eval_batch_size=64,
               warmup_steps=10)
_B = TrainSpec(batch_size=100, epochs=2, learning_rate=1e-3, adam_epsilon=TORCH_EPS, eval_batch_size=100,
               warmup_steps=10)
# C trains for 1,000 steps, not epochs: 25 epochs is enough for 1,000 batches of 100 on the smallest
# dataset (mnist-5k: 40 a epoch); on full MNIST the step limit ends training in epoch 2.
_C = TrainSpec(batch_size=100, epochs=25, max_steps=1000, learning_rate=0.5, adam_epsilon=TF1_EPS,
               lr_schedule="exponential", lr_decay=0.9, lr_decay_steps=10_000, eval_batch_size=10_000,
               warmup_steps=10)
# Keras 2's Adam(decay=1e-5): lr / (1 + 1e-5 * iterations), i.e. inverse-time decay every step.
_D = TrainSpec(batch_size=64, epochs=10, learning_rate=1e-3, adam_epsilon=KERAS_EPS, eval_batch_size=64,
               warmup_steps=10)
_D_DECAY = replace(_D, lr_schedule="inverse-time", lr_decay=1e-5, lr_decay_steps=1)


@dataclass(frozen=True)
class Reference:
    label: str
    tutorial: str
    adapter: str
    model: ModelSpec
    train: TrainSpec
    accuracy: float | None  # reported test accuracy (fraction), where the tutorial gives a figure
    accuracy_text: str  # the tutorial's words, as the table shows them
    params: int | None  # reported parameter count, where given
    step_ms: float | None  # reported CPU step time (case D only; hardware unknown)

    def case(self, dataset: str = REFERENCE_DATASET) -> Case:
        return Case(adapter=self.adapter, model=self.model, train=self.train, dataset=dataset, label=self.label)


A, B, C, D = ("Keras tutorial", "PyTorch tutorial", "TF 1.x static_rnn tutorial", "Keras notebook (dropout)")

REFERENCES: dict[str, Reference] = {r.label: r for r in (
    Reference("A1", A, "keras", ModelSpec("rnn", (512, 512), activation="relu"), _A, 0.98, "almost 98%", None, None),
    Reference("A2", A, "keras", ModelSpec("gru", (256, 256)), _A, 0.99, "close to 99%", None, None),
    Reference("A3", A, "keras", ModelSpec("lstm", (256, 256)), _A, 0.99, "≈A2, a bit better", None, None),
    Reference("A4", A, "keras", ModelSpec("lstm", (256, 256), bidirectional=True), _A, 0.99, "≈A3", None, None),
    Reference("B1", B, "torch", ModelSpec("rnn", (128, 128)), _B, 0.93, "93%", None, None),
    Reference("B2", B, "torch", ModelSpec("gru", (128, 128)), _B, None, "above B1", None, None),
    Reference("B3", B, "torch", ModelSpec("lstm", (128, 128)), _B, 0.97, "97%", None, None),
    Reference("C", C, "tf1-graph", ModelSpec("lstm", (128,)), _C, 0.9693, "96.93%", None, None),
    Reference("D1", D, "keras", ModelSpec("rnn", (256, 256)), _D, 0.9568, "95.68%", 206_858, 104.0),
    Reference("D2", D, "keras", ModelSpec("lstm", (256, 256), activation="relu", dropout=(0.2, 0.2)), _D_DECAY,
              0.9880, "98.80%", 819_722, 290.0),
    Reference("D3", D, "keras", ModelSpec("gru", (256, 128), activation="relu", dropout=(0.3, 0.0)), _D_DECAY,
              0.9900, "99.00%", 369_162, 175.0),
)}


def reported_step_ratio(label: str) -> float | None:
    """Reported step time of `label` over RATIO_BASE's, where both are reported."""
    ref, base = REFERENCES.get(label), REFERENCES[RATIO_BASE]
    if ref is None or ref.step_ms is None or base.step_ms is None:
        return None
    return ref.step_ms / base.step_ms


def seeds_cases(dataset: str = REFERENCE_DATASET) -> list[Case]:
    return [r.case(dataset) for r in REFERENCES.values()]



def reference_frame(df: pd.DataFrame) -> pd.DataFrame:
    """One row per reference case in a run's results: measured figures beside the reported ones.

    Columns: label, tutorial, adapter, model, dataset, status, steps_run, reference_steps,
    shortened, changed (settings that differ from the tutorial's, '' if none), params, reported_params, params_match, test_accuracy, reported_accuracy,
    reported_accuracy_text, step_ms, ratio_to_base, reported_ratio_to_base. `ratio_to_base` is
    the case's median step time over RATIO_BASE's from the same run (None if either is missing).
    """
    if df.empty or "label" not in df:
        return pd.DataFrame()
    rows = df[df["label"].isin(list(REFERENCES))]
    if rows.empty:
        return pd.DataFrame()
    base = rows.loc[rows["label"] == RATIO_BASE, "step_time_ms_median"]
    base_ms = float(base.iloc[0]) if len(base) and pd.notna(base.iloc[0]) else None
    out = []
    for _, r in rows.iterrows():
        ref = REFERENCES[r["label"]]
        steps_ref = ref.train.planned_steps(TRAIN_SIZES[r["dataset"]])
        steps_run = int(r["steps_run"]) if pd.notna(r["steps_run"]) else None
        step_ms = float(r["step_time_ms_median"]) if pd.notna(r["step_time_ms_median"]) else None
        params = int(r["params"]) if pd.notna(r["params"]) else None
        out.append({
            "label": ref.label,
            "tutorial": ref.tutorial,
            "adapter": r["adapter"],
            "model": ref.model.key,
            "dataset": r["dataset"],
            "status": r["status"],
            "steps_run": steps_run,
            "reference_steps": steps_ref,
            "shortened": steps_run is not None and steps_run < steps_ref,
            "changed": _changed_settings(ref, r),
            "params": params,
            "reported_params": ref.params,
            "params_match": None if ref.params is None or params is None else params == ref.params,
            "test_accuracy": float(r["test_accuracy"]) if pd.notna(r["test_accuracy"]) else None,
            "reported_accuracy": ref.accuracy,
            "reported_accuracy_text": ref.accuracy_text,
            "step_ms": step_ms,
            "ratio_to_base": step_ms / base_ms if step_ms is not None and base_ms else None,
            "reported_ratio_to_base": reported_step_ratio(ref.label),
        })
    order = {label: i for i, label in enumerate(REFERENCES)}
    return pd.DataFrame(out).sort_values("label", key=lambda s: s.map(order)).reset_index(drop=True)


def _changed_settings(ref: Reference, row: pd.Series) -> str:
    """Settings of the run that differ from the tutorial's ('' when none), e.g. 'batch 32'."""
    changes = []
    if int(row["batch_size"]) != ref.train.batch_size:
        changes.append(f"batch {int(row['batch_size'])} (tutorial {ref.train.batch_size})")
    if row["init"] != "framework":
        changes.append(f"--init {row['init']}")
    return ", ".join(changes)


def reference_notices(frame: pd.DataFrame) -> list[str]:
    """What a reader must know before comparing the measured column with the reported one."""
    if frame.empty:
        return []
    notes = []
    datasets = set(frame["dataset"])
    if "mnist-5k" in datasets:
        notes.append(
            f"data: mnist-5k (the bundled {TRAIN_SIZES['mnist-5k']:,} / {TEST_SIZES['mnist-5k']:,} subset), so accuracy "
            f"is NOT comparable with the reported figures, which are for full MNIST "
            f"({TRAIN_SIZES['mnist']:,} / {TEST_SIZES['mnist']:,})."
        )
    others = datasets - {"mnist", "mnist-5k"}
    if others:
        notes.append(f"data: {', '.join(sorted(others))}, a different task: the reported accuracies are MNIST's, "
                     "shown for orientation only.")
    short = frame[frame["shortened"]]
    if len(short) == len(frame):
        notes.append("training was SHORTENED (--epochs/--max-steps): every case trained fewer steps than its "
                     "tutorial (steps column), so no accuracy is the tutorial's.")
    elif not short.empty:
        notes.append("training was SHORTENED (--epochs/--max-steps) for " + ", ".join(
            f"{r.label} ({r.steps_run:,} of {r.reference_steps:,} steps)" for r in short.itertuples()
        ) + ": their accuracy is not the tutorial's.")
    changed = frame[frame["changed"] != ""]
    if not changed.empty:
        notes.append("settings CHANGED from the tutorial's: " + "; ".join(
            f"{r.label}: {r.changed}" for r in changed.itertuples()) + ".")
    relu_keras = [r.label for r in frame.itertuples() if r.adapter.startswith("keras")
                  and REFERENCES[r.label].model.activation != "tanh" and REFERENCES[r.label].model.cell != "rnn"]
    if relu_keras:
        notes.append(f"{', '.join(relu_keras)}: activation='relu' takes Keras off its fused cuDNN kernel on a GPU "
                     "(cuDNN needs tanh), so they run a generic step loop there (kernel_path column); SimpleRNN "
                     "cases (A1, D1) have no cuDNN kernel in Keras at all.")
    notes.append("cases: A = Keras tutorial, B = PyTorch tutorial, C = TF 1.x static_rnn tutorial, D = Keras notebook "
                 "with dropout.")
    notes.append(f"step times: compare the ratios to {RATIO_BASE} (same run, same machine); the reported ones are "
                 "case D's CPU figures on unknown hardware.")
    return notes
