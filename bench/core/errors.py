"""Errors the harness raises for bad input, and the exit codes the CLI turns outcomes into."""

# 0: every case ok (or unavailable); 1: a case failed / a regression / a missing case; 2: bad input
EXIT_OK, EXIT_CASE_FAILED, EXIT_BAD_INPUT = 0, 1, 2


class BenchInputError(ValueError):
    """A user-supplied value is invalid; the message names the value and the valid choices."""


class DataError(BenchInputError):
    """A dataset is missing, corrupt or cannot be fetched."""


def choices_text(valid) -> str:
    """Render valid choices for an error message, e.g. "'a', 'b' or 'c'"."""
    items = [repr(v) for v in valid]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


ERROR_TAIL_LINES = 12


def error_tail(text: str, lines: int = ERROR_TAIL_LINES) -> str:
    """The last lines of a traceback or a process's log: what a failed row's `error` shows."""
    return "\n".join(text.strip().splitlines()[-lines:])
