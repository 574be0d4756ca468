"""`bench history`: the table of every case's series with its change points, and the trend chart."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def _short(label: str | None, digits: int = 9) -> str:
    """A commit's first hex digits; a version as it is."""
    text = label or "?"
    return text[:digits] if len(text) == 40 and all(c in "0123456789abcdef" for c in text) else text


def change_text(series, change) -> str:
    """'+7.9% at 3d4bdfe12 (p=0.002)'."""
    return f"{100 * (change.ratio - 1):+.1f}% at {_short(series.first_after(change))} (p={change.p_value:.2g})"


def history_table(found: list, min_magnitude: float, alpha: float, min_size: int, by: str = "commit") -> Table:
    """One row per series. The machine column only when there are several (the lines under the table name
    each fingerprint); case ids fold and change texts wrap at spaces, so 80 columns cut no number."""
    table = Table(title="step-time history", caption=f"change points of at least {100 * min_magnitude:g}% at "
                  f"p < {alpha:g}, segments of {min_size} points or more", caption_justify="left",
                  header_style="bold", show_edge=False, pad_edge=False)
    machines = len({s.fingerprint for s in found}) > 1
    named = "commit" if by == "commit" else "version"
    columns = [("case", "left", "fold"), ("machine", "left", "ellipsis")] if machines else [("case", "left", "fold")]
    columns += [("points (outliers)", "right", "ellipsis"), ("newest ms", "right", "ellipsis"),
                (f"changes (first {named} after each)", "left", "fold"), ("newest segment", "left", "ellipsis")]
    for name, justify, overflow in columns:
        # a fingerprint whole (10), and room for '(p=0.00012)' on a line of its own
        table.add_column(name, justify=justify, overflow=overflow, no_wrap=name == "machine",
                         min_width={"machine": 10}.get(name, 12 if name.startswith("changes") else None))
    for s in found:
        newest = "[bold red]slower[/]" if s.newest_is_slowdown else \
            ("[green]faster[/]" if s.changes else "[dim]no change[/]")
        table.add_row(s.case_id, *([s.fingerprint] if machines else []),
                      f"{s.points} ({len(s.outliers)})" if s.outliers else str(s.points), f"{s.values[-1]:.2f}",
                      "; ".join(change_text(s, c) for c in s.changes) or "-", newest)
    return table


def history_rows(found: list, by: str = "commit") -> list[dict[str, Any]]:
    """JSON rows; `labels` name the points (commits, or versions with --by version)."""
    return [{"case_id": s.case_id, "fingerprint": s.fingerprint, "machine": s.machine, "points": s.points,
             "by": by, "step_time_ms": list(s.values), "labels": list(s.labels), "outliers": list(s.outliers),
             "newest_is_slowdown": s.newest_is_slowdown,
             "changes": [{"first_after": s.first_after(c), "index": c.index, "before_ms": c.before_ms,
                          "after_ms": c.after_ms, "ratio": c.ratio, "p_value": c.p_value} for c in s.changes]}
            for s in found]


def history_svg(found: list) -> str:
    """Small multiples: one panel per series, its points in history order, each segment's median as a
    line, every change point marked with its size and first commit, the outliers set aside crossed."""
    import math

    from bench.render.html import CHART_WIDTH_IN, _matplotlib, _svg

    plt = _matplotlib()
    cols = min(2, max(1, len(found)))
    rows = max(1, math.ceil(len(found) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(CHART_WIDTH_IN, 0.5 + 2.4 * rows), squeeze=False)
    for ax, s in zip(axes.flat, found, strict=False):
        ax.plot(range(s.points), s.values, marker="o", markersize=3, lw=0.8, color="#1f77b4")
        if s.outliers:  # set aside by the Hampel filter: drawn, never a change
            ax.plot(list(s.outliers), [s.values[i] for i in s.outliers], ls="none", marker="x", markersize=6,
                    color="#ff7f0e", label="outlier (set aside)")
            ax.legend(fontsize=6, loc="lower right")
        for start, end, level in s.levels():  # the medians the changes report
            ax.hlines(level, start - 0.3, end - 0.7, color="#444", lw=1.2)
        for c in s.changes:
            ax.axvline(c.index - 0.5, color="#d62728" if c.slowdown else "#2ca02c", ls="--", lw=1)
            ax.annotate(f"{100 * (c.ratio - 1):+.1f}%\n{_short(s.first_after(c))}", (c.index - 0.5, max(s.values)),
                        fontsize=7, ha="left", va="top", xytext=(2, 0), textcoords="offset points")
        ticks = list(range(0, s.points, max(1, s.points // 6)))
        ax.set_xticks(ticks, [_short(s.labels[i], 7) for i in ticks], rotation=30, fontsize=7)
        ax.set_title(f"{s.case_id} ({s.fingerprint})", fontsize=8)
        ax.set_ylabel("ms per step")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(found):]:
        ax.axis("off")
    fig.tight_layout()
    return _svg(fig)
