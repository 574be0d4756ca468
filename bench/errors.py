"""Errors the harness raises for bad input; the CLI turns them into exit code 2."""


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
