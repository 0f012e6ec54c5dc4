"""The `mtgan` command line: a thin layer over mtgan.api.

mtgan train [PRESET|CONFIG.yaml] [key=value ...] [--out DIR] [--resume RUN_DIR]
            [--init-from RUN|CHECKPOINT]
mtgan sample RUN_DIR [--task T|all] --n N --out FILE.png|FILE.npz|DIR/
mtgan describe [PRESET|CONFIG.yaml] [key=value ...]
mtgan bench PRESET... [key=value ...] [--seeds N] [--jobs N] [--out DIR] [--baseline PRESET]
            [--sweep KEY=V1,V2,...]
mtgan report RUN_DIR|BENCH_DIR [--out FILE.html]
mtgan presets
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from mtgan.errors import MtganError
from mtgan.metrics.extractors import FEATURE_CHOICES
from mtgan.metrics.registry import metric_names
from mtgan.rundir import BenchDir
from mtgan.training.distributed import USER_ERROR_EXIT, launched_by_torchrun


def _split_target(args: list[str]) -> tuple[str | None, list[str]]:
    """The first positional that is not `key=value` names the preset or config file."""
    if args and "=" not in args[0]:
        return args[0], args[1:]
    return None, args


def cmd_train(ns: argparse.Namespace) -> int:
    from mtgan import api

    if ns.nproc is not None and not launched_by_torchrun():
        return _launch_torchrun(ns)
    target, overrides = _split_target(ns.args)
    if ns.resume is not None and target is not None:
        raise MtganError(
            "--resume continues a run with its own config; give only key=value overrides"
        )
    api.train(
        target, overrides, out=ns.out, resume=ns.resume, quiet=ns.quiet, init_from=ns.init_from
    )
    return 0


def _launch_torchrun(ns: argparse.Namespace) -> int:
    """`mtgan train --nproc N ...` = torchrun with N processes on this machine, same arguments."""
    from mtgan.training.distributed import launch

    args = list(ns.args)
    flags = (("--out", ns.out), ("--resume", ns.resume), ("--init-from", ns.init_from))
    for flag, value in flags:
        if value is not None:
            args += [flag, value]
    if ns.quiet:
        args.append("--quiet")
    return launch(ns.nproc, args, run_dir=ns.resume or ns.out)


def cmd_sample(ns: argparse.Namespace) -> int:
    from mtgan import api
    from mtgan.report import export_kind, export_samples, save_image_grid, save_points_plot

    kind = export_kind(ns.out)  # a bad --out fails before the run is loaded
    every = ns.task == "all" or (ns.task is None and kind == "dir")
    if every and kind == "png":
        raise MtganError("--task all: a .png is one task's grid; use --out DIR/ or FILE.npz")
    task = "0" if ns.task is None else ns.task
    run = api.Run(ns.run, checkpoint=ns.checkpoint)
    out = Path(ns.out)
    if kind == "png":
        samples = run.sample(task, ns.n, seed=ns.seed, use_ema=not ns.no_ema, label=ns.label)
        out.parent.mkdir(parents=True, exist_ok=True)
        if run.kind == "points":
            save_points_plot(samples, out, title=run.task_names[run.task_index(task)])
        else:
            save_image_grid(samples, out)
        print(f"wrote {ns.n} samples of task {task} to {out}")
        return 0
    export_samples(
        run,
        out,
        None if every else [task],
        ns.n,
        seed=ns.seed,
        batch=ns.batch,
        use_ema=not ns.no_ema,
        label=ns.label,
        force=ns.force,
        progress=not ns.quiet and sys.stderr.isatty(),
    )
    which = f"each of {len(run.task_names)} tasks" if every else f"task {task}"
    where = f"{out}/ (one folder per task)" if kind == "dir" else str(out)
    print(f"wrote {ns.n} samples of {which} to {where}")
    return 0


def cmd_eval(ns: argparse.Namespace) -> int:
    import json

    from mtgan import api

    run = api.Run(ns.run, checkpoint=ns.checkpoint)
    metrics = [m.strip() for m in ns.metrics.split(",") if m.strip()] if ns.metrics else None
    result = run.evaluate(metrics, features=ns.features, n=ns.n, live=ns.live)
    print(json.dumps({k: v for k, v in result.items() if "/task" not in k}, indent=1))
    print(f"wrote {run.eval_written} (per-task values included)", file=sys.stderr)
    return 0


def _targets(texts: list[str] | None) -> dict[str, float]:
    goals = {}
    for text in texts or []:
        key, _, value = text.partition("=")
        try:
            goals[key] = float(value)
        except ValueError:
            raise MtganError(f"--target {text}: expected METRIC=VALUE, e.g. fid=100") from None
    return goals


def cmd_bench(ns: argparse.Namespace) -> int:
    from mtgan.bench import run_bench

    targets = [a for a in ns.args if "=" not in a]
    overrides = [a for a in ns.args if "=" in a]
    metrics = [m.strip() for m in ns.metrics.split(",") if m.strip()] if ns.metrics else None
    goals = _targets(ns.target)
    seeds = list(range(ns.seeds)) if ns.seed_list is None else ns.seed_list
    outcome = run_bench(targets, overrides, seeds, ns.jobs, Path(ns.out), metrics,
                        ns.eval_every, goals, ns.quiet, ns.baseline, ns.sweep)  # fmt: skip
    print(outcome.markdown)
    print(f"wrote {ns.out}/summary.md, summary.csv, runs.csv and report.html", file=sys.stderr)
    if outcome.failed:
        names = ", ".join(f"{r.name} seed {r.seed}" for r in outcome.failed)
        print(f"mtgan: error: runs failed: {names}; logs in {ns.out}/logs", file=sys.stderr)
        return 1
    return 0


def cmd_report(ns: argparse.Namespace) -> int:
    from mtgan import api

    goals = _targets(ns.target)
    if (goals or ns.baseline) and not BenchDir(ns.run).is_bench():
        raise MtganError(
            "--target and --baseline apply to a bench directory's table, not to a single run"
        )
    print(f"wrote {api.report(ns.run, ns.out, goals, ns.baseline)}")
    return 0


def cmd_describe(ns: argparse.Namespace) -> int:
    from mtgan import api

    target, overrides = _split_target(ns.args)
    print(api.describe(target, overrides))
    return 0


def cmd_presets(ns: argparse.Namespace) -> int:
    from mtgan.config import preset_descriptions

    if ns.balancers:
        from mtgan.balance import describe_balancers

        rows = describe_balancers()
        width = max(len(name) for name, _ in rows)
        print("balancers (balance.d=NAME, balance.g=NAME; options under balance.g_options.NAME):")
        for name, text in rows:
            print(f"{name:{width}s}  {text}")
        return 0
    descriptions = preset_descriptions()
    width = max(map(len, descriptions))
    for name, text in descriptions.items():
        print(f"{name:{width}s}  {text}")
    return 0


CHECKPOINT_HELP = "a step, `latest` (the default) or `best` (runs with train.until)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mtgan", description="Multi-task GANs with shared layers, trained together."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a preset or config file (default: pertask)")
    p.add_argument("args", nargs="*", help="[PRESET|CONFIG.yaml] [key=value ...]")
    p.add_argument("--out", help="run directory (default: runs/<preset>-<time>)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its latest checkpoint")
    p.add_argument(
        "--init-from",
        metavar="RUN",
        help="start from a finished run's weights (train.init_from): matching layers are "
        "loaded, new tasks' own layers start fresh (train.init_task=T: as task T's; nearest: "
        "as the task whose images are nearest)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    p.add_argument(
        "--nproc", type=int, help="processes for data-parallel training (launched with torchrun)"
    )
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "sample", help="write samples of a trained run (PNG grid, .npz, or PNG files for FID tools)"
    )
    p.add_argument("run", help="run directory")
    p.add_argument(
        "--task",
        help="task index or name, or `all` (default: all for DIR/, else 0)",
    )
    p.add_argument("--n", type=int, default=64, help="samples per task (default 64)")
    p.add_argument(
        "--out",
        required=True,
        help="FILE.png: a grid; FILE.npz: uint8 x (N, H, W, C) [y: classes]; "
        "DIR/: uint8 PNGs, DIR/<task>/000000.png",
    )
    p.add_argument(
        "--batch", type=int, default=500, help="samples per task generated at a time (default 500)"
    )
    p.add_argument("--force", action="store_true", help="replace an earlier export in DIR/")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--seed", type=int, default=0, help="noise seed (default 0)")
    p.add_argument("--no-ema", action="store_true", help="use the raw generator, not its EMA")
    p.add_argument(
        "--label", type=int, default=None, help="conditional runs (acgan): only this class"
    )
    p.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("eval", help="evaluate a run's latest (or a given) checkpoint → eval.json")
    p.add_argument("run", help="run directory")
    p.add_argument(
        "--metrics",
        help=f"comma-separated: {','.join(metric_names())} "
        "(default: eval.metrics of the run, else what fits its data)",
    )
    p.add_argument("--features", choices=FEATURE_CHOICES)
    p.add_argument("--n", type=int, help="generated samples per task (default: eval.n)")
    p.add_argument("--checkpoint", help=CHECKPOINT_HELP)
    p.add_argument(
        "--live",
        action="store_true",
        help="the generators as trained, not their EMA (→ eval-live.json; eval.json is kept)",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("bench", help="train presets × seeds alike; table and HTML report")
    p.add_argument("args", nargs="+", help="PRESET|CONFIG.yaml ... [key=value ...] (all runs)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 per preset (default 3)")
    p.add_argument("--seed-list", type=int, nargs="+", help="exactly these seeds instead")
    p.add_argument("--jobs", type=int, default=1, help="runs side by side (default 1)")
    p.add_argument("--out", default="runs/bench", help="bench directory (default runs/bench)")
    p.add_argument("--metrics", help="comma-separated metrics (default: what fits every preset)")
    p.add_argument("--eval-every", type=int, help="steps between evaluations (default steps/10)")
    p.add_argument(
        "--target",
        action="append",
        metavar="METRIC=VALUE",
        help="report steps/seconds to reach it (repeatable; default: the worst preset's mean)",
    )
    p.add_argument(
        "--baseline",
        metavar="PRESET",
        help="one of the presets (e.g. a single-task run): a Δm %% column of every preset's "
        "mean relative gain over it across per-task metrics (positive: better)",
    )
    p.add_argument(
        "--sweep",
        metavar="KEY=V1,V2,...",
        help="every preset at each value of one config key (e.g. data.per_task=10,25,100): a "
        "table per value and each metric drawn against the value",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("report", help="HTML report of a run (or rebuild a bench's)")
    p.add_argument("run", help="run directory or bench directory")
    p.add_argument("--out", help="HTML file (default RUN_DIR/report.html)")
    p.add_argument("--target", action="append", metavar="METRIC=VALUE",
                   help="bench directories: time-to-target columns for these values")  # fmt: skip
    p.add_argument("--baseline", help="bench directories: the Δm %% column against this preset")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("describe", help="print the networks, who shares which layer, and sizes")
    p.add_argument("args", nargs="*", help="[PRESET|CONFIG.yaml] [key=value ...]")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("presets", help="list the presets shipped with mtgan")
    p.add_argument("--balancers", action="store_true", help="list the balancers instead")
    p.set_defaults(func=cmd_presets)
    return parser


def parse(argv: list[str] | None) -> argparse.Namespace:
    """Overrides may come after the options too (`mtgan train pertask --out X train.steps=9`):
    argparse stops collecting a positional list at the first option, so the rest that look
    like key=value join it; anything else is still an error."""
    parser = build_parser()
    ns, rest = parser.parse_known_args(argv)
    late = [a for a in rest if "=" in a and not a.startswith("-")]
    if late and isinstance(getattr(ns, "args", None), list):
        ns.args += late
        rest = [a for a in rest if a not in late]
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return ns


_PACKAGE = Path(__file__).resolve().parent


def _plain_warnings(python_show: Callable[..., None]) -> Callable[..., None]:
    """A `warnings.showwarning` that prints mtgan's warnings as one plain line on stderr
    (`warning: ...`), a hint for the user rather than a source location; other libraries'
    warnings go to `python_show` as before."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if not Path(filename).resolve().is_relative_to(_PACKAGE):
            python_show(message, category, filename, lineno, file, line)
            return
        text = " ".join(str(message).split())  # one line, whatever the message holds
        print(f"warning: {text}", file=sys.stderr if file is None else file, flush=True)

    return show


def main(argv: list[str] | None = None) -> int:
    ns = parse(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _plain_warnings(warnings.showwarning)  # until the command ends
            return ns.func(ns)
    except MtganError as e:
        print(f"mtgan: error: {e}", file=sys.stderr)
        return USER_ERROR_EXIT
    except KeyboardInterrupt:
        print("mtgan: interrupted; the last checkpoint is intact", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
