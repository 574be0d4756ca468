"""The live display of a run: a bar for the whole matrix and one for each running case's steps.

A case's process sends its step, epoch and loss about once a second (bench/measure/curve.py); they arrive on
the executor's reader thread, which rich's Progress allows. `--quiet` hides the bars; the one line
per finished case is still printed, so logs keep a trace of the run.
"""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench.core.specs import Case
from bench.core.status import styled
from bench.results.record import Record


def _key(case_id: str, repeat: int) -> str:
    return case_id if repeat == 0 else f"{case_id}#{repeat}"


class RunProgress:
    def __init__(self, console: Console, total: int, already: int = 0, quiet: bool = False,
                 show_host: bool = False) -> None:
        self.console = console
        self.show_host = show_host  # cases run on other machines (a remote executor): name each one's host
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[info]}"),
            console=console,
            disable=quiet,
        )
        self.total, self.already = total, already
        self._cases: dict[str, TaskID] = {}
        self._overall: TaskID | None = None

    def __enter__(self) -> RunProgress:
        self.progress.start()
        self._overall = self.progress.add_task("cases", total=self.total, completed=self.already, info="")
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def started(self, case: Case, repeat: int) -> None:
        key = _key(case.case_id, repeat)
        self._cases[key] = self.progress.add_task(f"  {key}", total=None, info="starting")

    def case_progress(self, case: Case, repeat: int, body: dict) -> None:
        task = self._cases.get(_key(case.case_id, repeat))
        if task is None:
            return
        loss = body.get("loss")
        info = f"epoch {body.get('epoch')}" + (f", loss {loss:.4f}" if isinstance(loss, (int, float)) else "")
        self.progress.update(task, total=body.get("total"), completed=body.get("step", 0), info=info)

    def finished(self, record: Record) -> None:
        task = self._cases.pop(_key(record.case_id, record.repeat), None)
        if task is not None:
            self.progress.remove_task(task)
        step = f"{record.step_time_ms_median:.2f} ms/step" if record.step_time_ms_median else ""
        where = f" on {record.host}" if self.show_host else ""
        self.progress.console.print(f"  {_key(record.case_id, record.repeat)}: {styled(record.status)} {step}{where}")
        if self._overall is not None:
            self.progress.advance(self._overall)
