"""Plain-text and markdown tables of a results file."""

from __future__ import annotations

import math

from .format import TALLY_UNITS, Results


def summary_table(res: Results, columns=("P_b", "dE_b", "dE_cm")) -> list[list[str]]:
    """Rows of strings: label, then mean ± sem for each column, then the coherent split (when the
    points have one)."""
    units = res.points[0].units if res.points else {}
    coherent = any(p.coherent for p in res.points)
    rows = [["point"] + [f"{c} [{units.get(c) or TALLY_UNITS.get(c, ('', ''))[0] or '1'}]" for c in columns]
            + (["P_coh", "coh. frac."] if coherent else [])]
    for p in res.points:
        row = [p.label]
        for c in columns:
            m, s = p.stats.get(c, (math.nan, math.nan))
            row.append(f"{m:.4g} ± {s:.2g}")
        co = p.coherent
        if coherent:
            row.append(f"{co.get('P_coh', math.nan):.3g} ± {co.get('P_coh_sem', math.nan):.2g}")
            row.append(f"{co.get('coherent_fraction', math.nan):.3g}")
        rows.append(row)
    return rows


def format_table(rows, markdown: bool = False) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if markdown:
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(rows[0], widths)) + " |",
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows[1:]]
        return "\n".join(lines)
    lines = ["  ".join(c.ljust(w) for c, w in zip(rows[0], widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows[1:]]
    return "\n".join(lines)
