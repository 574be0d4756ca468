"""One flat record per case: the columns of results.parquet, built from the column registry.

Column names are a public contract (users load the parquet): bump SCHEMA_VERSION when a column
changes meaning or is removed. Every column is declared once (bench/results/columns.py gathers the
declarations, each measured one beside its measurement), and `Record` is made from them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bench.core.specs import PERMUTATION_SEED, Case
from bench.results.columns import ALL

# 2: `repeat` (run --repeat K), and where each case ran (`host`, `executor`, `node`)
# 3: `precision` with the setting read back (`matmul_precision`), `compile_policy`, and the GPU's
#    state while steps were timed (clocks, temperature, power, throttle reasons, other processes)
# 4: `untimed_steps`: the steps right after a curve evaluation are left out of the step-time statistics
# 5: step_time_cv is the sample CV (ddof=1), the harness's one CV (bench/core/spread.py); it was the
#    population CV, smaller by sqrt((n-1)/n): 0.17% at 300 timed steps; where a case's time goes beyond
#    its steps (startup_s, import_s, build_s, kernel_path_s, phase_split_s)
# 6: `curve_test_loss` (the test loss at each curve evaluation, what `bench converge` compares) and
#    `jit_compile` (Keras' compile switch as a case setting); the sequence shape (`sequence`, `timesteps`,
#    `features`, `permutation_seed`) and `sweep_axes`
# 7: `time_to_target_s` changes meaning: step 0 + (steps to the target - 1) x the median step (the raw sum of
#    step times is `time_to_target_raw_s`); status `inconclusive` (learning not shown) and the learning tests'
#    columns; the same work in every adapter's clock (Keras' batch fetch left it, torch's accuracy count came
#    in); the loop's wall time (`loop_*`), the machine's load (`other_cpu_cores`, `disturbed`), `infer_path`
SCHEMA_VERSION = 7



class _RecordMethods:
    """What a Record does beyond holding its columns."""

    @classmethod
    def for_case(cls, case: Case, run_id: str, threads: int, repeat: int = 0) -> Record:
        m, t = case.model, case.train
        return cls(
            repeat=repeat,
            run_id=run_id,
            case_id=case.case_id,
            label=case.label,
            adapter=case.adapter,
            cell=m.cell,
            bidirectional=m.bidirectional,
            units=",".join(map(str, m.units)),
            layers=m.layers,
            activation=m.activation,
            dropout=",".join(f"{d:g}" for d in m.dropout),
            dataset=case.dataset,
            batch_size=t.batch_size,
            epochs=t.epochs,
            max_steps=t.max_steps,
            learning_rate=t.learning_rate,
            optimizer=t.optimizer,
            adam_epsilon=t.adam_epsilon,
            lr_schedule=t.lr_schedule,
            lr_decay=t.lr_decay,
            lr_decay_steps=t.lr_decay_steps,
            seed=t.seed,
            device=case.device,
            threads=threads,
            init=case.init,
            precision=t.precision,
            jit_compile=t.jit_compile,
            sequence=case.sequence,
            timesteps=m.timesteps,
            features=m.input_size,
            permutation_seed=PERMUTATION_SEED if case.sequence == "permuted-pixels" else None,
            sweep_axes=",".join(case.sweep_axes),
        )

    def with_measurements(self, measured: dict[str, Any]) -> Record:
        """Copy with measured fields set; an unknown key is a programming error and raises."""
        lists = {k: tuple(v or ()) for k, v in measured.items() if k in LIST_COLUMNS}
        return dataclasses.replace(self, **{**measured, **lists})

    def to_row(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        for name in LIST_COLUMNS:
            row[name] = list(row[name])
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        """The inverse of to_row (a JSON row from a worker); an unknown column raises TypeError."""
        return cls(**{**row, **{k: tuple(row.get(k) or ()) for k in LIST_COLUMNS}})

    @property
    def key(self) -> tuple[str, int]:
        """What a run records once: the case and which of its processes."""
        return self.case_id, self.repeat


Record = dataclasses.make_dataclass(
    "Record",
    [(c.name, c.annotation) if c.required else
     (c.name, c.annotation, dataclasses.field(default=() if c.is_list else c.default)) for c in ALL],
    bases=(_RecordMethods,),
    frozen=True,
)
Record.__module__ = __name__  # make_dataclass's own `module` argument needs Python 3.12
Record.__doc__ = """Everything measured about one case. None means "not measured" (reason in a *_reason column)."""

COLUMNS = [c.name for c in ALL]
# Columns holding a list per row (raw step times, the accuracy curve): tuples in memory, lists in
# parquet, JSON text in the CSV.
LIST_COLUMNS = tuple(c.name for c in ALL if c.is_list)
# Column dtypes follow the declarations, so a missing figure is NaN (or <NA>), never None.
_DTYPES = {c.name: c.dtype for c in ALL if not c.is_list}
