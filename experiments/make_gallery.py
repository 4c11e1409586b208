"""Build ``docs/gallery/`` and ``docs/gallery.md`` from the experiments' own plots.

Command::

    python -m experiments.make_gallery            # every experiment at full size
    python -m experiments.make_gallery --quick    # the CI sizes (faster, same figures)

Runs every experiment (as ``gradlab run --all`` does) into ``--out`` (``results/``), copies each
PNG it wrote to ``docs/gallery/<experiment>/<plot>.png`` and writes ``docs/gallery.md``, one
line per figure with the caption the experiment gave it (``metrics["plots"]``). Nothing in the
gallery is drawn by hand.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from gradlab.cli import run as cli_run

ROOT = Path(__file__).resolve().parents[1]


def make_gallery(
    quick: bool = False,
    out: Path = Path("results"),
    gallery: Path = ROOT / "docs" / "gallery",
    names: list[str] | None = None,
) -> Path:
    """Run the experiments ``names`` (all when ``None``), copy every experiment's plots into
    ``gallery`` and write ``gallery.md`` beside it; an experiment not run this time is taken
    from its ``<out>/<name>/metrics.json`` of an earlier run."""
    directory = cli_run.find_experiments_dir(Path(__file__).resolve().parent)
    known = cli_run.list_experiments(directory)
    lines = [
        "# Gallery",
        "",
        "Every figure below is drawn by an experiment in `experiments/` (one per seed notebook), "
        f"made by `python -m experiments.make_gallery{' --quick' if quick else ''}`; "
        "`gradlab run <name>` redraws one into `results/<name>/`, with its numbers in "
        "`metrics.json`.",
        "",
    ]
    for name, summary in known.items():
        if names is None or name in names:
            start, cpu = time.perf_counter(), time.process_time()
            metrics, _ = cli_run.run_one(name, directory, Path(out), quick)
            seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
            failed = [c for c, ok in (metrics.get("checks") or {}).items() if not ok]
            n_plots = len(metrics.get("plots", {}))
            print(
                f"{name}: wall {seconds:.1f} s, cpu {cpu:.1f} s, {n_plots} plots, failed {failed}"
            )
        else:
            metrics = json.loads((Path(out) / name / "metrics.json").read_text())
        target = Path(gallery) / name
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        lines += [f"## `{name}`", "", summary, ""]
        for png, caption in metrics.get("plots", {}).items():
            shutil.copyfile(Path(out) / name / png, target / png)
            rel = f"{Path(gallery).name}/{name}/{png}"
            lines.append(f"- **{png}**: {caption}  ")
            lines.append(f"  ![{name}: {caption}]({rel})")
        checks = metrics.get("checks") or {}
        if checks:
            lines += [
                "",
                "Checks: "
                + "; ".join(f"{c} ({'ok' if ok else 'FAILED'})" for c, ok in checks.items()),
            ]
        lines.append("")
    md = Path(gallery).parent / "gallery.md"
    md.write_text("\n".join(lines))
    return md


def _main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="experiments to rerun (default: all)")
    parser.add_argument("--quick", action="store_true", help="the CI sizes")
    parser.add_argument("--out", type=Path, default=Path("results"), help="results root")
    parser.add_argument("--gallery", type=Path, default=ROOT / "docs" / "gallery")
    args = parser.parse_args()
    md = make_gallery(args.quick, args.out, args.gallery, args.names or None)
    print(f"wrote {md}")


if __name__ == "__main__":
    _main()
