"""The PNG chart of the memsafe benchmarks (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

MEMSAFE = "#2b6cb0"
OTHER = "#a0aec0"
REF = "#ed8936"
TARGET = "#c53030"

SHORT = {
    "window": {
        "ref_closure": "reference: C mprotect, fn(view), mprotect",
        "ref_with": "reference: with C ctx (mprotect in/out)",
        "memsafe_with": "memsafe: with key.read() as v",
        "memsafe_closure": "memsafe: key.read(fn)",
        "plain_hash": "sha256(bytes), no protection",
        # from section 7, against its own floor batches
        "sealed_with": "sealed: with key.read() as v",
        "sealed_closure": "sealed: key.read(fn)",
    },
    "alloc": {
        "memsafe": "memsafe: random(32).close()",
        "sodium": "libsodium C loop",
        "bytes": "bytes(32)",
    },
}


def _section(doc: dict[str, Any], key: str) -> dict[str, Any] | None:
    for s in doc["sections"]:
        if s["key"] == key:
            return dict(s)
    return None


def _ratio_bars(
    ax: Any,
    rows: list[tuple[str, str, dict[str, Any]]],
    title: str,
    xlabel: str,
    targets: list[float],
) -> None:
    """Horizontal bars of ratios with min..max whiskers.

    rows: (label, kind, row) with kind 'memsafe', 'ref' or 'other'.
    """
    med = [r["ratio"]["median"] for _, _, r in rows]
    lo = [r["ratio"]["median"] - r["ratio"]["min"] for _, _, r in rows]
    hi = [r["ratio"]["max"] - r["ratio"]["median"] for _, _, r in rows]
    colors = [{"memsafe": MEMSAFE, "ref": REF}.get(k, OTHER) for _, k, _ in rows]
    y = list(range(len(rows)))[::-1]
    ax.barh(
        y,
        med,
        xerr=[lo, hi],
        color=colors,
        capsize=2,
        height=0.62,
        error_kw={"elinewidth": 0.8},
    )
    top = max([r["ratio"]["max"] for _, _, r in rows] + targets)
    for yi, m, (_, _, r) in zip(y, med, rows, strict=True):
        ax.text(
            r["ratio"]["max"] + top * 0.02,
            yi,
            f"{m:.2f}x",
            va="center",
            ha="left",
            fontsize=8,
        )
    ax.set_yticks(y)
    ax.set_yticklabels([label for label, _, _ in rows], fontsize=8)
    ax.axvline(1.0, color="black", linewidth=0.8)
    for t in targets:
        ax.axvline(t, color=TARGET, linestyle="--", linewidth=1)
        ax.text(
            t,
            len(rows) - 0.45,
            f" target {t:g}x",
            color=TARGET,
            fontsize=7,
            ha="left",
            va="bottom",
        )
    ax.set_title(title, fontsize=9, loc="left")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.tick_params(axis="x", labelsize=7.5)
    ax.set_xlim(0, top * 1.22)
    ax.set_ylim(-0.6, len(rows) - 0.1)


def _kind(key: str) -> str:
    if key.startswith(("memsafe", "here", "ft")):
        return "memsafe"
    return "ref" if key.startswith("ref") else "other"


def draw(doc: dict[str, Any], path: Path) -> None:
    """Write the chart."""
    fig, axes = plt.subplots(
        2, 2, figsize=(11, 6.8), dpi=80, gridspec_kw={"width_ratios": [1.2, 1]}
    )
    (a, b), (c, d) = axes
    for ax in axes.flat:
        ax.set_axis_off()

    win = _section(doc, "window")
    if win:
        a.set_axis_on()
        sealed = _section(doc, "sealed")
        rows = [
            (SHORT["window"][r["key"]], _kind(r["key"]), r)
            for r in win["rows"]
            if "ratio" in r
        ] + [
            (SHORT["window"][r["key"]], "memsafe", r)
            for r in (sealed["rows"] if sealed else [])
            if r["key"] in ("sealed_with", "sealed_closure")
        ]
        _ratio_bars(
            a,
            rows,
            "1. read window + sha256 on 32 B\n(x the C mprotect pair; lower is better)",
            "x C floor",
            [1.8],
        )

    alloc = _section(doc, "alloc")
    if alloc:
        b.set_axis_on()
        rows = [
            (SHORT["alloc"][r["key"]], _kind(r["key"]), r)
            for r in alloc["rows"]
            if r["key"] in SHORT["alloc"]
        ]
        _ratio_bars(
            b,
            rows,
            "2. allocate + close 32 B\n(x the C syscall floor; lower is better)",
            "x C floor",
            [1.3],
        )

    rows = []
    tp = _section(doc, "throughput")
    if tp:
        rows += [
            ("3. sha256 of 64 MiB through a view", "memsafe", r)
            for r in tp["rows"]
            if r["key"] == "memsafe"
        ]
    conc = _section(doc, "concurrency")
    if conc:
        for r in conc["rows"]:
            if "ratio" in r:
                interp = r["label"].split(":")[0].replace("CPython ", "")
                n = r["key"].rsplit("_", 1)[1]
                rows.append((f"6. {n} threads, {interp}", "memsafe", r))
    if rows:
        c.set_axis_on()
        _ratio_bars(
            c,
            rows,
            "3. throughput (x floor), 6. windows/s (x 1 thread)\n(higher is better)",
            "x baseline",
            [0.97] if tp else [],
        )

    mem = _section(doc, "memory")
    if mem:
        d.set_axis_on()
        _memory(d, mem, _section(doc, "scale"), _section(doc, "sealed_scale"))

    m = doc["machine"]
    fig.suptitle(
        f"memsafe benchmarks: {m['cpu_model']}, {m['cpus']} cpus, Linux "
        f"{m['kernel']}, {doc['python']['label']}, git "
        f"{(doc['git']['revision'] or '?')[:10]}; median of "
        f"{doc['settings']['reps']}, whiskers min..max",
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(path)
    plt.close(fig)


def _memory(
    ax: Any,
    mem: dict[str, Any],
    scale: dict[str, Any] | None,
    sealed: dict[str, Any] | None = None,
) -> None:
    metrics = [
        ("pages", "mapped\npages"),
        ("locked_kb", "locked\nkB"),
        ("maps", "mappings"),
        ("rss_kb", "resident\nkB"),
    ]
    kinds = [
        k
        for k in ("memsafe", "sodium")
        if any(r["key"].startswith(k + "_") for r in mem["rows"])
    ]
    n = max(int(r["key"].rsplit("_", 1)[1]) for r in mem["rows"])
    width = 0.38
    for i, kind in enumerate(kinds):
        vals = []
        for metric, _ in metrics:
            row = next(r for r in mem["rows"] if r["key"] == f"{kind}_{metric}_{n}")
            vals.append(row["median"])
        xs = [j + (i - (len(kinds) - 1) / 2) * width for j in range(len(metrics))]
        ax.bar(
            xs,
            vals,
            width=width * 0.95,
            color=MEMSAFE if kind == "memsafe" else OTHER,
            label="memsafe" if kind == "memsafe" else "libsodium",
        )
        for x, v in zip(xs, vals, strict=True):
            ax.text(x, v, f"{v:.2f}", ha="center", va="bottom", fontsize=7.5)
    ax.set_xticks(range(len(metrics)))
    ax.set_xticklabels([label for _, label in metrics], fontsize=8)
    ax.tick_params(axis="y", labelsize=7.5)
    ax.legend(fontsize=7.5, loc="upper left", frameon=False)
    title = f"4. per live 32-byte secret ({n:,} live)"
    if scale:
        parts = []
        for r in scale["rows"]:
            if r["key"] not in ("memsafe_root", "memsafe_dropped"):
                continue
            case = "root" if r["key"] == "memsafe_root" else "8 MiB memlock"
            limit = r.get("note", "").split(";")[0].replace("limit: ", "")
            parts.append(f"{case}: {r['median']:,.0f}, {limit}")
        if parts:
            title += "\n5. memsafe secrets until failure:\n   " + "\n   ".join(parts)
    rows = {r["key"]: r for r in sealed["rows"]} if sealed else {}
    for case in ("sealed_root", "sealed_8m"):
        if f"{case}_locked" in rows:
            made = rows[f"{case}_made"]["median"]
            title += (
                f"\n9. sealed secrets, {made:,.0f} live:\n   "
                f"{rows[f'{case}_locked']['median']:.0f} B locked each, "
                f"{rows[f'{case}_maps']['median']:,.0f} maps lines"
            )
            break
    ax.set_title(title, fontsize=8.5, loc="left")
    ax.set_ylim(0, ax.get_ylim()[1] * 1.12)
