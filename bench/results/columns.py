"""The column registry: every column of results.parquet, declared once.

The columns a case defines (identity, model, training), its outcome and where it ran are declared
here; each measured column beside its measurement (bench/measure/*.py, `COLUMNS`). The Record
(bench/results/record.py), `compare`'s gate fields, the per-case tables, the HTML report's table
and docs/columns.md (python -m bench.results.columns > docs/columns.md) all derive from `ALL`.
"""

from __future__ import annotations

from bench.core.columns import Column, columns
from bench.core.status import STATUSES, Status
from bench.measure import case, curve, disturbance, environment, flops, inference, learning, loop, memory, phases, steps

CASE_COLUMNS = (
    *columns("identity",
             ("run_id", "str", "the run this row belongs to (its directory under results/runs/)"),
             ("case_id", "str", "adapter/model/batch/dataset/seed: unique within a run", {"table": True}),
             ("label", "str", "the case's name where it has one (reference cases A1..D3, user matrices), else ''"),
             ("adapter", "str", "which adapter trained it (python -m bench list)", {"table": True}),
             required=True),
    *columns("model",
             ("cell", "str", "rnn (SimpleRNN), gru or lstm"),
             ("bidirectional", "bool", "whether every recurrent layer reads both directions"),
             ("units", "str", "units per layer, comma-separated, e.g. '256,128'"),
             ("layers", "int", "recurrent layers"),
             ("activation", "str", "the recurrent activation (tanh; relu for SimpleRNN only)"),
             ("dropout", "str", "dropout rate after each layer, comma-separated"),
             required=True),
    *columns("training",
             ("dataset", "str", "mnist-5k, mnist, fashion-mnist or synthetic"),
             ("batch_size", "int", "examples per training step"),
             ("epochs", "int", "epochs asked for"),
             ("max_steps", "int", "step limit (None: whole epochs)"),
             ("learning_rate", "float", "the optimizer's initial learning rate"),
             ("optimizer", "str", "adam or sgd (plain)"),
             ("adam_epsilon", "float", "Adam's epsilon, the same in every framework"),
             ("lr_schedule", "str", "constant, inverse-time or exponential"),
             ("lr_decay", "float", "the schedule's rate"),
             ("lr_decay_steps", "int", "the schedule's step unit"),
             ("seed", "int", "the seed of the weights and of the batch order"),
             ("device", "str", "what was asked: auto, cpu or cuda"),
             ("threads", "int", "threads every framework was given"),
             ("init", "str", "starting weights: framework (each its own defaults), keras or torch (one scheme everywhere)"),
             required=True),
    Column("precision", "str", "training", "fp32, tf32, bf16 or fp16: what was asked (matmul_precision: what was "
           "in force)", default="fp32"),
    Column("sequence", "str", "sequence", "how an image is read: rows (28x28), pixels (784x1), permuted-pixels "
           "(784x1, psMNIST); random for synthetic data", default="rows"),
    Column("timesteps", "int", "sequence", "timesteps of each example", default=28),
    Column("features", "int", "sequence", "features per timestep", default=28),
    Column("permutation_seed", "int", "sequence", "the seed of the fixed pixel order (permuted-pixels only)"),
    Column("sweep_axes", "str", "identity", "the sweeps this case is a point of, comma-separated (units, timesteps, "
           "batch_size, layers); '' outside sweeps", default=""),
    Column("jit_compile", "str", "training", "auto, on or off: Keras' compile(jit_compile=...) as asked (auto: Keras' "
           "choice; compile_mode says what ran)", default="auto"),
    Column("repeat", "int", "identity", "which of the case's processes this is (run --repeat K: 0..K-1)", default=0,
           table=True),
)
OUTCOME_COLUMNS = (
    Column("status", "str", "outcome", "ok, inconclusive (learning not shown), failed, timeout, oom, diverged, not-learning or unavailable",
           default=Status.FAILED.value, table=True),
    Column("error", "str", "outcome", "the last lines of the error or of the process's log"),
)
RUN_COLUMNS = columns(
    "where it ran",
    ("host", "str", "the machine the case's process ran on", {"table": True}),
    ("executor", "str", "local or ray"),
    ("node", "str", "the Ray node id, where there is one"),
    ("wall_time_s", "float", "the case's process from start to result: start-up, build, training, evaluations",
     {"unit": "s", "fmt": ".1f"}),
)

# The order of the parquet's columns: the case, what came out, how fast, on what, with what memory.
ALL: tuple[Column, ...] = (
    *CASE_COLUMNS, *OUTCOME_COLUMNS, *RUN_COLUMNS, *case.RUNTIME_COLUMNS, *case.RESULT_COLUMNS, *learning.COLUMNS,
    *steps.COLUMNS, *loop.COLUMNS, *disturbance.COLUMNS, *case.TIME_COLUMNS, *case.OVERHEAD_COLUMNS, *memory.COLUMNS, *memory.STATE_COLUMNS, *case.PATH_COLUMNS,
    *phases.COLUMNS, *inference.COLUMNS, *flops.COLUMNS, *environment.COLUMNS, *curve.COLUMNS, *steps.RAW_COLUMNS,
)
BY_NAME: dict[str, Column] = {c.name: c for c in ALL}
if len(BY_NAME) != len(ALL):  # a name declared twice would silently shadow the other
    raise RuntimeError(f"columns declared twice: {sorted({c.name for c in ALL if [d.name for d in ALL].count(c.name) > 1})}")
GROUPS: tuple[str, ...] = tuple(dict.fromkeys(c.group for c in ALL))


def gate_fields() -> dict[str, int]:
    """`compare --fail FIELD:PCT` fields -> +1 where larger is worse, -1 where larger is better."""
    return {c.name: c.direction for c in ALL if c.gate}


def table_columns() -> tuple[str, ...]:
    return tuple(c.name for c in ALL if c.table)


def docs_markdown() -> str:
    """docs/columns.md: the column reference, generated from the declarations."""
    lines = ["# Columns of results.parquet", "",
             "Generated from the column registry (`bench/results/columns.py`): "
             "`python -m bench.results.columns > docs/columns.md`. A public contract, versioned by "
             "`schema_version` in meta.json; files of an older schema load with the newer columns empty.",
             "", f"`status` is one of: {', '.join(f'`{s}`' for s in STATUSES)}.", ""]
    for group in GROUPS:
        lines += [f"## {group}", "", "| column | type | unit | better | description |", "|---|---|---|---|---|"]
        for c in (c for c in ALL if c.group == group):
            flags = " (gate field)" if c.gate else ""
            lines.append(f"| `{c.name}` | {c.kind} | {c.unit} | {c.better or ''} | {c.doc}{flags} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(docs_markdown(), end="")
