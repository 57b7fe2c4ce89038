"""Seed sweeps and setting grids: many training runs in parallel, one summary.  The library
side of ``evsim sweep``.

A sweep is settings x seeds.  The settings are the product of the ``grid`` axes (each a
setting key and a list of values), crossed with an explicit list of ``runs`` (each a
table of settings; default one empty table); ``base`` settings apply to every run.  Keys
are those of ``evsim train --set`` (``lr``, ``network.dropout``, ...).  Every run is an
ordinary :func:`evsim.training.trainer.train` run with its own directory::

    OUT/sweep.json                  what the sweep is (data files, preset, settings, seeds)
    OUT/status.json                 runs that failed, with their error
    OUT/<setting>/seed<k>/          config.json, checkpoint.npz, log.jsonl, model.npz, result.json
                                    (``seed<k>_fold<i>/`` with speaker folds)
    OUT/summary.json, summary.csv   mean +- std per setting and metric, with the run directories

``<setting>`` is ``key=value`` joined by ``_`` (``default`` for the base settings alone).
The runs are tasks of an :class:`evsim.parallel.Executor` (this process, joblib's
processes or a Dask cluster), so a failed run is reported and the others go on.
Resuming (the same sweep again, ``resume=True``) skips runs that have their
``result.json``, continues runs that have a checkpoint from their last finished epoch
(the trainer's own resume, which ends with exactly the uninterrupted result) and starts
the others.

Speaker folds (``folds`` K >= 2, ``evsim sweep --folds K``): every setting and seed is run
K times, run i holding out fold i of the training file's speakers (``val_folds`` K,
``val_fold`` i of :class:`~evsim.training.presets.TrainConfig`), so the runs of a setting
together hold every training speaker out once: k-fold cross-validation by voice.  A
setting's summary then pools its seeds and folds.

Summary: per setting and metric, the mean and the sample standard deviation (n - 1 in
the denominator, as papers report over seeds; none for a single run) over the runs that
finished.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import re
import signal
import threading
from dataclasses import asdict, dataclass, field, replace
from typing import Callable, NamedTuple

from evsim.errors import EvsimError

from .presets import ConfigFileError, TrainConfig, _load_file, _parse_value, make_config

__all__ = ["METRICS", "SweepError", "SweepSpec", "SweepJob", "parse_seeds", "parse_axis", "load_sweep_file",
           "load_errors", "plan_jobs", "prepare_sweep", "run_job", "run_jobs", "run_sweep", "summarize", "summary_text", "summary_csv"]

#: Figures summarised per setting: result.json key -> column title of the text table.
METRICS = {"test_accuracy": "test %", "validation_accuracy": "validation %", "best_epoch": "best epoch",
           "train_seconds": "minutes"}
_PERCENT = ("test_accuracy", "validation_accuracy")


class SweepError(EvsimError):
    """A sweep that cannot run: bad seeds, settings, sweep file or output directory."""


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs.  Paths are absolute; settings keys are dotted (``network.hidden``).

    grid: list of [key, [values...]] axes, in order; runs: list of {key: value} tables
    """

    train: str
    test: str
    valid: str | None = None
    preset: str = "default"
    config: str | None = None
    base: dict = field(default_factory=dict)
    grid: list = field(default_factory=list)
    runs: list = field(default_factory=lambda: [{}])
    seeds: list = field(default_factory=lambda: [0])
    folds: int = 0

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self)))  # tuples -> lists, as read back from JSON

    def settings(self) -> list[dict]:
        """Every setting of the sweep (flat dotted keys), seeds not included."""
        keys = [k for k, _ in self.grid]
        return [{**run, **dict(zip(keys, combo))} for run in self.runs
                for combo in itertools.product(*(values for _, values in self.grid))]


class SweepJob(NamedTuple):
    """One training run of a sweep."""

    label: str       # the setting as a directory name
    setting: dict    # the settings that vary between runs (flat dotted keys)
    seed: int
    run_dir: str
    config: str      # TrainConfig JSON
    train: str
    test: str
    valid: str | None
    fold: int | None = None   # the speaker fold held out (``folds`` > 0), else None


# -- parsing ----------------------------------------------------------------------------
def parse_seeds(text: str) -> list[int]:
    """``"0-4"`` -> [0, 1, 2, 3, 4]; ``"0,3,7"``; ``"5"``; ranges and lists combine (``"0-2,10"``)."""
    seeds: list[int] = []
    for part in str(text).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) and int(m.group(2)) < int(m.group(1))):
            raise SweepError(f"--seeds {text!r}: expected seeds >= 0 as N, A-B (A <= B) or a comma list, e.g. 0-4 or 0,3,7")
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        seeds.extend(range(lo, hi + 1))
    if len(set(seeds)) != len(seeds):
        raise SweepError(f"--seeds {text!r}: a seed is given twice")
    return seeds


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and quotes: ``[64,64],[128,128]`` -> two values."""
    parts, depth, quote, current = [], 0, None, ""
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        current += ch
    return parts + [current]


def parse_axis(item: str) -> tuple[str, list]:
    """``"lr=1e-3,2e-3"`` -> ("lr", [0.001, 0.002]); values are JSON (bare words are strings)."""
    key, sep, values = item.partition("=")
    if not sep or not key.strip() or not values.strip():
        raise SweepError(f"--set {item!r}: expected KEY=VALUE or KEY=V1,V2,..., e.g. --set lr=1e-3,2e-3")
    return key.strip(), [_parse_value(v.strip()) for v in _split_top_level(values)]


def load_sweep_file(path: str) -> dict:
    """A TOML or JSON sweep file: ``preset``, ``config``, ``seeds`` (list or "0-4"), ``base``
    (table), ``grid`` (table of lists), ``runs`` (list of tables).  Nested tables such as
    ``[base.network]`` are flattened to dotted keys."""
    try:
        raw = _load_file(path)
    except ConfigFileError as exc:
        raise SweepError(str(exc).replace("config file", "sweep file")) from None
    known = {"preset", "config", "seeds", "folds", "base", "grid", "runs"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise SweepError(f"sweep file {path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    out = {k: raw[k] for k in ("preset", "config") if k in raw}
    if "config" in out:
        out["config"] = os.path.join(os.path.dirname(os.path.abspath(path)), out["config"])
    if "seeds" in raw:
        seeds = raw["seeds"]
        out["seeds"] = parse_seeds(seeds) if isinstance(seeds, str) else _seed_list(seeds, path)
    if "folds" in raw:
        out["folds"] = raw["folds"]                            # checked with the rest of the spec
    if "base" in raw:
        out["base"] = _flat(_table(raw["base"], "base", path))
    if "grid" in raw:
        grid = _flat(_table(raw["grid"], "grid", path))
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise SweepError(f"sweep file {path}: grid.{key} is {values!r}; expected a non-empty list of values")
        out["grid"] = [[k, v] for k, v in grid.items()]
    if "runs" in raw:
        runs = raw["runs"]
        if not isinstance(runs, list) or not runs:
            raise SweepError(f"sweep file {path}: runs must be a non-empty list of tables of settings")
        out["runs"] = [_flat(_table(r, "runs[]", path)) for r in runs]
    return out


def _seed_list(seeds, path) -> list[int]:
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                            for s in seeds):
        raise SweepError(f"sweep file {path}: seeds is {seeds!r}; expected a list of integers >= 0 or a string like \"0-4\"")
    return list(seeds)


def _table(value, name, path) -> dict:
    if not isinstance(value, dict):
        raise SweepError(f"sweep file {path}: {name} is {value!r}; expected a table of settings")
    return value


def _flat(table: dict, prefix: str = "") -> dict:
    """{"network": {"dropout": [0.2]}} -> {"network.dropout": [0.2]}."""
    out = {}
    for key, value in table.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _nest(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, last = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return out


# -- planning ---------------------------------------------------------------------------
def _label(setting: dict) -> str:
    if not setting:
        return "default"
    text = "_".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in setting.items())
    return re.sub(r"[^A-Za-z0-9._,=+\-]", "", text.replace('"', ""))[:120] or "setting"


def plan_jobs(spec: SweepSpec, out_dir: str) -> list[SweepJob]:
    """Every run of the sweep, its configuration built and validated now (a bad setting
    fails before any run starts).  In order setting by setting, seed by seed; with speaker
    folds fold by fold instead (every setting and seed of fold 0 first), so that the runs
    finished when a sweep is stopped pair the settings on the same held-out voices."""
    if not spec.seeds:
        raise SweepError("no seeds: give --seeds, e.g. --seeds 0-2")
    for path in filter(None, (spec.train, spec.test, spec.valid)):
        if not os.path.isfile(path):
            raise SweepError(f"data file not found: {path}")
    _check_folds(spec)
    folds = list(range(spec.folds)) if spec.folds else [None]
    jobs, labels = [], {}
    for setting in spec.settings():
        if "seed" in setting or "seed" in spec.base:
            raise SweepError("seed is set by --seeds (or seeds in the sweep file), not as a setting")
        label = _label(setting)
        if labels.setdefault(label, setting) != setting:
            raise SweepError(f"two settings give the same run directory {label!r}: {labels[label]} and {setting}")
        for seed, fold in itertools.product(spec.seeds, folds):
            fold_sets = {} if fold is None else {"val_folds": spec.folds, "val_fold": fold}
            config = make_config(spec.preset, spec.config, _nest({**spec.base, **setting, "seed": seed, **fold_sets}))
            if config.init_from:  # read by a worker, whose working directory may differ
                config = replace(config, init_from=os.path.abspath(config.init_from))
            name = f"seed{seed}" if fold is None else f"seed{seed}_fold{fold}"
            jobs.append(SweepJob(label, setting, seed, os.path.join(out_dir, label, name), config.to_json(),
                                 spec.train, spec.test, spec.valid, fold))
    if spec.folds:  # fold-major: a sweep stopped early has compared its settings on the same voices
        jobs.sort(key=lambda job: (job.fold, spec.seeds.index(job.seed)))
    return jobs


def _check_folds(spec: SweepSpec) -> None:
    """``folds``: 0 (none) or K >= 2 speaker folds, each run once per fold; then the folds are
    the sweep's, not settings, and need the training file's speakers (no validation file)."""
    if not (isinstance(spec.folds, int) and not isinstance(spec.folds, bool) and (spec.folds == 0 or spec.folds >= 2)):
        raise SweepError(f"--folds {spec.folds!r}: expected 0 (none) or a number of speaker folds >= 2")
    if not spec.folds:
        return
    if spec.valid:
        raise SweepError("--folds holds out speakers of the training file, but this dataset has its own validation "
                         "file; folds are for data without one (e.g. SHD, or --train/--test)")
    keys = set(spec.base) | {k for setting in spec.settings() for k in setting}
    if keys & {"val_fold", "val_folds"}:
        raise SweepError("val_fold and val_folds are set by --folds, not as settings")
    from evsim.data import SpikeFile

    from .data import too_few_speakers

    with SpikeFile(spec.train) as fh:
        what = too_few_speakers(fh.speakers, spec.folds)
    if what:
        raise SweepError(f"--folds {spec.folds}: {spec.train} has {what}; expected at least {spec.folds} speakers")


def _result_path(job: SweepJob) -> str:
    return os.path.join(job.run_dir, "result.json")


def run_job(job: SweepJob) -> dict:
    """Run in a worker: train one run (continuing it from its checkpoint if it has one)."""
    from .trainer import train

    resume = os.path.exists(os.path.join(job.run_dir, "checkpoint.npz"))
    return train(TrainConfig.from_json(job.config), job.train, job.test, job.run_dir, valid_path=job.valid,
                 resume=resume)


# -- running ----------------------------------------------------------------------------
def _write_json(path: str, obj) -> None:
    from evsim._io import atomic_write

    with atomic_write(path, "w") as fh:
        fh.write(json.dumps(obj, indent=2) + "\n")


def _error_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, EvsimError) else f"{type(exc).__name__}: {exc}"


def prepare_sweep(spec: SweepSpec | None, out_dir: str, resume: bool = False) -> tuple[str, list[SweepJob]]:
    """Check ``out_dir`` against the sweep, plan and validate every run, then record the
    sweep in ``out_dir/sweep.json`` (only once all of it is valid).  With ``resume`` and no
    spec: the sweep recorded there.  Returns (absolute out_dir, runs)."""
    out_dir = os.path.abspath(out_dir)
    manifest = os.path.join(out_dir, "sweep.json")
    if os.path.exists(manifest):
        with open(manifest) as fh:
            stored = SweepSpec(**json.load(fh)["spec"])
        if not resume:
            raise SweepError(f"{out_dir} already holds a sweep (sweep.json); use --resume to continue it or choose another --out")
        if spec is not None and spec.to_dict() != stored.to_dict():
            raise SweepError(f"--resume: the sweep in {out_dir} has other settings, seeds or data; resume it with the same "
                             "options (or --resume --out alone), or start a new sweep in another --out")
        return out_dir, plan_jobs(stored, out_dir)
    if resume and spec is None:
        raise SweepError(f"--resume: no sweep in {out_dir} (expected {manifest})")
    if spec is None:
        raise SweepError("nothing to sweep: give the data (DATASET or --train/--test)")
    jobs = plan_jobs(spec, out_dir)
    os.makedirs(out_dir, exist_ok=True)
    _write_json(manifest, {"version": 1, "spec": spec.to_dict()})
    return out_dir, jobs


class _StopFlag:
    """Ctrl-C during a run in this process: the trainer turns it into its own error, which
    must stop the sweep rather than count as one failed run."""

    def __init__(self):
        self.hit = False

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.hit = True
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def run_sweep(spec: SweepSpec | None, out_dir: str, executor, *, resume: bool = False,
              on_result: Callable[[SweepJob, dict | None, str | None, int, int], None] | None = None) -> dict:
    """:func:`prepare_sweep`, then :func:`run_jobs`."""
    out_dir, jobs = prepare_sweep(spec, out_dir, resume)
    return run_jobs(out_dir, jobs, executor, on_result=on_result)


def run_jobs(out_dir: str, jobs: list[SweepJob], executor,
             on_result: Callable[[SweepJob, dict | None, str | None, int, int], None] | None = None) -> dict:
    """Run every run of ``jobs`` that has no result yet on ``executor``; return the summary
    (also written to summary.json and summary.csv in ``out_dir``).

    on_result(job, result, error, n_finished, n_to_run) is called as each run ends.
    """
    status_path = os.path.join(out_dir, "status.json")
    errors = load_errors(out_dir)
    todo = [j for j in jobs if not os.path.exists(_result_path(j))]
    finished = 0
    try:
        with _StopFlag() as stop:
            for job, result, exc in executor.map_unordered(run_job, todo):
                if stop.hit:
                    raise KeyboardInterrupt
                finished += 1
                error = _error_text(exc) if exc is not None else None
                errors.pop(job.run_dir, None)
                if error:
                    errors[job.run_dir] = error
                _write_json(status_path, {"failed": errors})
                if on_result is not None:
                    on_result(job, result, error, finished, len(todo))
    except KeyboardInterrupt:
        raise SweepError(f"interrupted after {finished} of {len(todo)} runs; every run keeps the checkpoint of its last "
                         f"finished epoch: continue with evsim sweep --resume --out {out_dir}") from None
    summary = summarize(jobs, errors)
    _write_json(os.path.join(out_dir, "summary.json"), summary)
    from evsim._io import atomic_write

    with atomic_write(os.path.join(out_dir, "summary.csv"), "w") as fh:
        fh.write(summary_csv(summary))
    return summary


def load_errors(out_dir: str) -> dict:
    """The failed runs recorded in ``out_dir/status.json``: {run directory: error}."""
    path = os.path.join(out_dir, "status.json")
    if not os.path.exists(path):
        return {}
    with open(path) as fh:
        return dict(json.load(fh).get("failed", {}))


# -- summary ----------------------------------------------------------------------------
def _mean_std(values: list[float]) -> dict:
    n = len(values)
    if n == 0:
        return {"mean": None, "std": None, "n": 0}
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else None
    return {"mean": mean, "std": std, "n": n}


def summarize(jobs: list[SweepJob], errors: dict | None = None) -> dict:
    """Per setting: its runs (directory, seed, status, figures or error) and mean / std of
    every metric in :data:`METRICS` over the finished runs."""
    errors = errors or {}
    settings: dict[str, dict] = {}
    for job in jobs:
        entry = settings.setdefault(job.label, {"label": job.label, "setting": job.setting, "runs": []})
        run = {"run_dir": job.run_dir, "seed": job.seed, **({} if job.fold is None else {"fold": job.fold})}
        if os.path.exists(_result_path(job)):
            with open(_result_path(job)) as fh:
                result = json.load(fh)
            run.update(status="done", **{m: result.get(m) for m in METRICS})
        elif job.run_dir in errors:
            run.update(status="failed", error=errors[job.run_dir])
        else:
            run.update(status="not run")
        entry["runs"].append(run)
    for entry in settings.values():
        done = [r for r in entry["runs"] if r["status"] == "done"]
        entry["n_runs"], entry["n_done"] = len(entry["runs"]), len(done)
        entry["n_failed"] = sum(r["status"] == "failed" for r in entry["runs"])
        entry["metrics"] = {m: _mean_std([float(r[m]) for r in done if r.get(m) is not None]) for m in METRICS}
    return {"settings": list(settings.values()), "n_runs": len(jobs),
            "n_done": sum(e["n_done"] for e in settings.values()),
            "n_failed": sum(e["n_failed"] for e in settings.values())}


def _cell(stat: dict, metric: str) -> str:
    if stat["mean"] is None:
        return "-"
    scale = 100.0 if metric in _PERCENT else (1 / 60 if metric == "train_seconds" else 1.0)
    digits = 2 if metric in _PERCENT else 1
    text = f"{stat['mean'] * scale:.{digits}f}"
    return text + (f" +- {stat['std'] * scale:.{digits}f}" if stat["std"] is not None else "")


def _shown(path: str) -> str:
    """``path`` relative to the working directory when it lies below it."""
    rel = os.path.relpath(path)
    return path if rel.startswith("..") else rel


def _run_dirs(entry: dict) -> str:
    dirs = [_shown(r["run_dir"]) for r in entry["runs"]]
    parent = os.path.dirname(dirs[0])
    if len(dirs) > 1 and all(os.path.dirname(d) == parent for d in dirs):
        return os.path.join(parent, "{" + ",".join(os.path.basename(d) for d in dirs) + "}")
    return " ".join(dirs)


def summary_text(summary: dict) -> str:
    """The summary as an aligned text table (mean +- std; accuracies in %, time in minutes),
    then one line per failed run."""
    head = ["setting", "runs"] + list(METRICS.values()) + ["run directories"]
    rows = [[e["label"], f"{e['n_done']}/{e['n_runs']}"] + [_cell(e["metrics"][m], m) for m in METRICS] + [_run_dirs(e)]
            for e in summary["settings"]]
    widths = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [head] + rows]
    for e in summary["settings"]:
        lines += [f"failed: {_shown(r['run_dir'])}: {r['error']}" for r in e["runs"] if r["status"] == "failed"]
    return "\n".join(lines)


def summary_csv(summary: dict) -> str:
    """One row per setting: the setting's keys, run counts, mean and std of each metric
    (accuracies as fractions, time in seconds) and the run directories (``;``-separated)."""
    keys = list(dict.fromkeys(k for e in summary["settings"] for k in e["setting"]))
    head = ["setting"] + keys + ["n_runs", "n_done", "n_failed"]
    head += [f"{m}_{s}" for m in METRICS for s in ("mean", "std")] + ["run_dirs"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(head)
    for e in summary["settings"]:
        row = [e["label"]] + [json.dumps(e["setting"][k]) if k in e["setting"] else "" for k in keys]
        row += [e["n_runs"], e["n_done"], e["n_failed"]]
        row += ["" if e["metrics"][m][s] is None else e["metrics"][m][s] for m in METRICS for s in ("mean", "std")]
        writer.writerow(row + [";".join(r["run_dir"] for r in e["runs"])])
    return buf.getvalue()
