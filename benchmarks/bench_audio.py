"""The cochlea encoder against lauscher 1.0.1: fidelity, speed, end-to-end accuracy, live.

    python benchmarks/bench_audio.py --lauscher 3          # lauscher on the 3 shortest recordings (minutes each)
    python benchmarks/bench_audio.py --quick               # a short check of every section, no lauscher

Sections (all on ``shared/data/digits/audio_test``, whose recordings are the audio of
``digits_test.h5``):

* fidelity: evsim's spikes against lauscher 1.0.1's (run here, one process, on the
  shortest recordings; its spikes and time are kept in ``results/lauscher/`` so a rerun
  does not redo them) and, as a cheaper proxy on more recordings, against the samples of
  ``digits_test.h5``.  Per recording: correlation of the 700 per-channel spike counts, of
  the 10 ms time profile (all channels), and the ratio of total spikes.  Both sides are
  random: "ceiling" is the same figures between two evsim seeds of the same recording,
  the best a perfect copy of the chain could score;
* speed: CPU seconds (``time.process_time``, one process, numba and BLAS single-threaded)
  per second of audio, evsim and lauscher in the same run, and their ratio;
* accuracy: the built-in default model on the recordings (``classify_recordings``,
  offline encoding) against the same model on ``digits_test.h5``;
* live: ``LiveClassifier`` fed 20 ms blocks: compute per block, latency, and the accuracy
  of the live variants (fixed whole-file gain, running gain, causal membrane);
* against (``--against DIR``, another checkout of evsim, e.g. ``git archive <commit> |
  tar -x -C DIR``): the same recordings encoded by both, each in its own process,
  alternating DIR / this checkout ``--repeats`` times: CPU and wall seconds per second of
  audio and their ratio per pair, and the statistics of the spikes (this checkout's seed
  1 against DIR's seed 2, beside DIR's seed 1 against its seed 2, the ceiling).

    python benchmarks/bench_audio.py --against /tmp/evsim-old --speed 30 --repeats 4 --only against
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import RESULTS_DIR, environment, markdown_table, write_results  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "digits")
if not os.path.isdir(DATA):
    DATA = "/work/shared/data/digits"


def recordings():
    folder = os.path.join(DATA, "audio_test")
    with open(os.path.join(folder, "labels.csv")) as fh:
        rows = list(csv.DictReader(fh))
    return [(os.path.join(folder, r["file"]), int(r["index"]), int(r["label"])) for r in rows]


def compare(t_a, u_a, t_b, u_b) -> dict:
    ca, cb = np.bincount(u_a, minlength=700), np.bincount(u_b, minlength=700)
    n = int(max(t_a.max(initial=0), t_b.max(initial=0)) / 0.01) + 1
    pa = np.bincount((np.asarray(t_a) / 0.01).astype(int), minlength=n)
    pb = np.bincount((np.asarray(t_b) / 0.01).astype(int), minlength=n)
    return {"channel_r": float(np.corrcoef(ca, cb)[0, 1]), "time_r": float(np.corrcoef(pa, pb)[0, 1]),
            "total_ratio": float(t_a.size / t_b.size), "counts": (ca, cb)}


def evsim_encode(path, seed):
    from evsim.audio import encode_waveform, read_audio

    rec = read_audio(path)
    start = time.process_time()
    t, u = encode_waveform(rec.samples, rng=seed)
    return t, u, time.process_time() - start, rec.samples.size / rec.sample_rate


def lauscher_encode(path):
    """lauscher 1.0.1's chain as its command line runs it, one worker process; cached."""
    cache = os.path.join(RESULTS_DIR, "lauscher", os.path.basename(path) + ".npz")
    if os.path.exists(cache):
        z = np.load(cache)
        return z["times"], z["units"], float(z["cpu"]), float(z["wall"])
    from lauscher.audiowaves import FileMonoAudioWave
    from lauscher.helpers import CommandLineArguments
    from lauscher.transformations.wave2spike import Wave2Spike

    CommandLineArguments().num_concurrent_jobs = 1
    wall, cpu = time.perf_counter(), time.process_time()
    children = os.times()
    spikes = FileMonoAudioWave(path).transform(Wave2Spike(num_channels=700))
    after = os.times()
    cpu = time.process_time() - cpu + (after.children_user + after.children_system
                                       - children.children_user - children.children_system)
    wall = time.perf_counter() - wall
    times, units = np.asarray(spikes.spike_times, float), np.asarray(spikes.spike_labels).astype(np.int64)
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    np.savez(cache, times=times, units=units, cpu=cpu, wall=wall)
    return times, units, cpu, wall


def fidelity_lauscher(n: int, cached: bool = False) -> dict:
    """lauscher on the n shortest recordings, or (cached) on every recording whose
    lauscher output is already in results/lauscher (lauscher is not run again)."""
    recs = sorted(recordings(), key=lambda r: os.path.getsize(r[0]))
    if cached:
        have = set(os.listdir(os.path.join(RESULTS_DIR, "lauscher")))
        recs = [r for r in recs if os.path.basename(r[0]) + ".npz" in have]
    else:
        recs = recs[:n]
    rows, pooled = [], np.zeros((3, 700))
    evsim_encode(recs[0][0], seed=0)                      # warm-up: compiled kernels, membrane filters
    for path, _, _ in recs:
        lt, lu, l_cpu, l_wall = lauscher_encode(path)
        et, eu, e_cpu, seconds = evsim_encode(path, seed=1)
        e2t, e2u, _, _ = evsim_encode(path, seed=2)
        rows.append({"file": os.path.basename(path), "seconds": seconds, "lauscher_cpu_s": l_cpu,
                     "lauscher_wall_s": l_wall, "evsim_cpu_s": e_cpu, "lauscher_spikes": int(lt.size),
                     "evsim_spikes": int(et.size),
                     "vs_lauscher": {k: v for k, v in compare(et, eu, lt, lu).items() if k != "counts"},
                     "ceiling": {k: v for k, v in compare(et, eu, e2t, e2u).items() if k != "counts"}})
        pooled += [np.bincount(u, minlength=700) for u in (eu, lu, e2u)]
        print(rows[-1], flush=True)
    return {"recordings": rows, "pooled_channel_r": float(np.corrcoef(pooled[0], pooled[1])[0, 1]),
            "pooled_channel_r_ceiling": float(np.corrcoef(pooled[0], pooled[2])[0, 1]),
            "pooled_total_ratio": float(pooled[0].sum() / pooled[1].sum())}


def fidelity_proxy(n: int) -> dict:
    import h5py

    recs = recordings()[::max(1, len(recordings()) // n)][:n]
    per, pooled_a, pooled_b = [], np.zeros(700), np.zeros(700)
    with h5py.File(os.path.join(DATA, "digits_test.h5")) as h5:
        for path, index, _ in recs:
            et, eu, _, _ = evsim_encode(path, seed=index)
            rt, ru = h5["spikes/times"][index].astype(float), h5["spikes/units"][index].astype(np.int64)
            c = compare(et, eu, rt, ru)
            pooled_a += c.pop("counts")[0]
            pooled_b += np.bincount(ru, minlength=700)
            e2t, e2u, _, _ = evsim_encode(path, seed=index + 10_000)
            ceil = compare(et, eu, e2t, e2u)
            ceil.pop("counts")
            per.append({"vs_file": c, "ceiling": ceil})
    mean = lambda key, side: float(np.mean([p[side][key] for p in per]))  # noqa: E731
    return {"n": len(per), **{f"{side}_{key}": mean(key, side) for side in ("vs_file", "ceiling")
                              for key in ("channel_r", "time_r", "total_ratio")},
            "pooled_channel_r": float(np.corrcoef(pooled_a, pooled_b)[0, 1]),
            "pooled_total_ratio": float(pooled_a.sum() / pooled_b.sum())}


def speed(n: int, repeats: int = 3) -> dict:
    """CPU and wall seconds of the offline encoder on n recordings, the default membrane, the
    exact one and the recursive one alternating, ``repeats`` passes each; the minimum pass."""
    from evsim.audio import encode_waveform, read_audio

    recs = [read_audio(path).samples for path, _, _ in speed_set(n)]
    audio = sum(x.size for x in recs) / 22050
    banks = ({}, {"membrane": "exact"}, {"membrane": "recursive"})
    for bank in banks:
        encode_waveform(recs[0], rng=0, **bank)                # compile, kernels
    cpu, wall = [[], [], []], [[], [], []]
    for _ in range(repeats):
        for k, bank in enumerate(banks):
            c, w = time.process_time(), time.perf_counter()
            for i, x in enumerate(recs):
                encode_waveform(x, rng=i, **bank)
            cpu[k].append(time.process_time() - c)
            wall[k].append(time.perf_counter() - w)
    return {"n": n, "audio_s": audio, "cpu_s": min(cpu[0]), "wall_s": min(wall[0]),
            "x_real_time_cpu": audio / min(cpu[0]), "x_real_time_wall": audio / min(wall[0]),
            "x_real_time_cpu_exact": audio / min(cpu[1]), "x_real_time_cpu_recursive": audio / min(cpu[2]),
            "passes_cpu_s": cpu[0], "passes_cpu_s_exact": cpu[1], "passes_cpu_s_recursive": cpu[2],
            "stages_cpu_per_audio_s": stages()}


def accuracy(n: int | None) -> dict:
    from evsim.audio.dataset import AudioItem, classify_recordings  # noqa: F401
    from evsim.model import load_model
    from evsim.run import classify_file
    from evsim.cli.common import builtin_path

    model = load_model(builtin_path("default_model.npz"))
    folder = os.path.join(DATA, "audio_test")
    start = time.perf_counter()
    if n is None:
        audio = classify_recordings(model, folder)
        idx = list(range(len(audio.samples)))
    else:
        picks = recordings()[::max(1, 1000 // n)][:n]
        tmp = os.path.join(RESULTS_DIR, "audio_subset_labels.csv")
        with open(tmp, "w") as fh:
            fh.write("file,label\n" + "".join(f"{p},{lab}\n" for p, _, lab in picks))
        audio = classify_recordings(model, tmp)
        os.unlink(tmp)
        idx = [i for _, i, _ in picks]
    elapsed = time.perf_counter() - start
    spikes = classify_file(model, os.path.join(DATA, "digits_test.h5"), indices=idx)
    agree = float(np.mean([a.prediction == b.prediction for a, b in zip(audio.samples, spikes.samples)]))
    return {"n": len(idx), "accuracy_audio": audio.accuracy, "accuracy_h5": spikes.accuracy,
            "same_prediction": agree, "wall_s": elapsed}


def live(n: int) -> dict:
    from evsim.cli.common import builtin_path
    from evsim.audio.cochlea import rms_gain
    from evsim.audio.io import read_audio
    from evsim.audio.live import LiveClassifier
    from evsim.model import load_model

    model = load_model(builtin_path("default_model.npz"))
    picks = recordings()[::max(1, 1000 // n)][:n]
    out = {}
    for name, kw in {"file gain": {"gain": "file"}, "running gain": {"gain": "running"},
                     "file gain, causal": {"gain": "file", "causal": True}}.items():
        correct, block_times = [], []
        warm = LiveClassifier(model, rng=0, gain=1.0, fft_size=4096, causal=kw.get("causal", False))
        warm.push(np.zeros(22050)), warm.finish()             # compile and kernel spectra: not timed
        for path, index, label in picks:
            rec = read_audio(path)
            gain = rms_gain(rec.samples, 0.3) if kw["gain"] == "file" else "running"
            clf = LiveClassifier(model, rng=index, gain=gain, fft_size=4096, causal=kw.get("causal", False))
            for s in range(0, rec.samples.size, 441):     # 20 ms blocks
                t0 = time.perf_counter()
                clf.push(rec.samples[s:s + 441])
                block_times.append(time.perf_counter() - t0)
            clf.finish()
            correct.append(clf.prediction == label)
        bt = np.array(block_times)
        out[name] = {"accuracy": float(np.mean(correct)), "block_ms_mean": 1000 * bt.mean(),
                     "block_ms_p99": 1000 * np.percentile(bt, 99), "block_ms_max": 1000 * bt.max(),
                     "latency_ms": 1000 * clf.cochlea.latency_s}
        print(name, out[name], flush=True)
    return {"n": len(picks), "variants": out}


def _encode_worker(n: int, seeds: list, out: str) -> None:
    """Run in a subprocess with another checkout first on sys.path: encode the n
    recordings of :func:`speed_set` with each seed, timing the first seed's pass."""
    import numba

    numba.set_num_threads(1)
    from evsim.audio import encode_waveform, read_audio

    recs = [read_audio(path).samples for path, _, _ in speed_set(n)]
    encode_waveform(recs[0], rng=0)                           # compile, membrane filters
    result = {"audio_s": sum(x.size for x in recs) / 22050}
    for k, seed in enumerate(seeds):
        cpu, wall = time.process_time(), time.perf_counter()
        spikes = [encode_waveform(x, rng=np.random.default_rng([seed, i])) for i, x in enumerate(recs)]
        if k == 0:
            result["cpu_s"], result["wall_s"] = time.process_time() - cpu, time.perf_counter() - wall
        result[f"times_{seed}"] = np.concatenate([t for t, _ in spikes])
        result[f"units_{seed}"] = np.concatenate([u for _, u in spikes])
        result[f"sizes_{seed}"] = np.array([t.size for t, _ in spikes])
    np.savez(out, **result)


def speed_set(n: int) -> list:
    """n recordings spread over the test set (every 1000 // n-th)."""
    return recordings()[::max(1, 1000 // n)][:n]


def _run_worker(checkout: str, n: int, seeds: list) -> dict:
    import subprocess
    import tempfile

    here = os.path.dirname(os.path.abspath(__file__))
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "spikes.npz")
        code = (f"import sys; sys.path.insert(0, {checkout!r}); import evsim; sys.path.insert(0, {here!r}); "
                f"import bench_audio; bench_audio._encode_worker({n}, {seeds!r}, {out!r})")
        env = dict(os.environ, NUMBA_NUM_THREADS="1", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
                   NUMBA_CACHE_DIR=os.path.join(tempfile.gettempdir(), "numba_cache_bench_" +
                                                checkout.strip("/").replace("/", "_")))
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        with np.load(out) as z:
            return {k: z[k] for k in z.files}


def _split(res: dict, seed: int) -> list:
    ends = np.cumsum(res[f"sizes_{seed}"])
    return list(zip(np.split(res[f"times_{seed}"], ends[:-1]), np.split(res[f"units_{seed}"], ends[:-1])))


def against(checkout: str, n: int, repeats: int) -> dict:
    """This checkout's encoder against another's: speed alternating, then statistics."""
    mine = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    pairs = []
    for r in range(repeats):
        pair = {}
        for name, where in (("other", checkout), ("this", mine)):
            res = _run_worker(where, n, [1, 2] if r == 0 else [1])
            pair[name] = {"cpu_per_s": float(res["cpu_s"] / res["audio_s"]),
                          "wall_per_s": float(res["wall_s"] / res["audio_s"])}
            if r == 0:
                pair[name]["spikes"] = {s: _split(res, s) for s in (1, 2)}
                audio_s = float(res["audio_s"])
        pair["cpu_ratio"] = pair["other"]["cpu_per_s"] / pair["this"]["cpu_per_s"]
        pair["wall_ratio"] = pair["other"]["wall_per_s"] / pair["this"]["wall_per_s"]
        pair["load_average"] = list(os.getloadavg())
        pairs.append(pair)
        print("against", r, {k: v for k, v in pair.items() if k not in ("other", "this")},
              {k: pair[k]["cpu_per_s"] for k in ("other", "this")}, flush=True)
    first = pairs[0]
    stats = {"vs_other": [], "ceiling": []}
    pooled = np.zeros((3, 700))
    for (t_new, u_new), (t_o1, u_o1), (t_o2, u_o2) in zip(first["this"]["spikes"][1], first["other"]["spikes"][1],
                                                          first["other"]["spikes"][2]):
        stats["vs_other"].append({k: v for k, v in compare(t_new, u_new, t_o2, u_o2).items() if k != "counts"})
        stats["ceiling"].append({k: v for k, v in compare(t_o1, u_o1, t_o2, u_o2).items() if k != "counts"})
        pooled += [np.bincount(u, minlength=700) for u in (u_new, u_o2, u_o1)]
    same = [_identical(a, b) for a, b in zip(first["this"]["spikes"][1], first["other"]["spikes"][1])]
    mean = lambda side, key: float(np.mean([s[key] for s in stats[side]]))  # noqa: E731
    totals = {name: np.array([t.size for t, _ in first[name]["spikes"][1]], float) for name in ("this", "other")}
    for pair in pairs:
        for name in ("this", "other"):
            pair[name].pop("spikes", None)
    return {"checkout": checkout, "n": n, "audio_s": audio_s, "repeats": pairs,
            "cpu_ratio_median": float(np.median([p["cpu_ratio"] for p in pairs])),
            "wall_ratio_median": float(np.median([p["wall_ratio"] for p in pairs])),
            "this_cpu_per_s_median": float(np.median([p["this"]["cpu_per_s"] for p in pairs])),
            "other_cpu_per_s_median": float(np.median([p["other"]["cpu_per_s"] for p in pairs])),
            "this_wall_per_s_median": float(np.median([p["this"]["wall_per_s"] for p in pairs])),
            "other_wall_per_s_median": float(np.median([p["other"]["wall_per_s"] for p in pairs])),
            **{f"{side}_{key}": mean(side, key) for side in stats for key in ("channel_r", "time_r", "total_ratio")},
            "pooled_channel_r": float(np.corrcoef(pooled[0], pooled[1])[0, 1]),
            "pooled_channel_r_ceiling": float(np.corrcoef(pooled[2], pooled[1])[0, 1]),
            "same_seed_identical": float(np.sum([s[0] for s in same]) / np.sum([s[1] for s in same])),
            "total_spikes_this_seed1": int(totals["this"].sum()), "total_spikes_other_seed1": int(totals["other"].sum()),
            "total_ratio_se": float(np.sqrt(np.sum((totals["this"] - totals["other"]) ** 2)) / totals["other"].sum())}


def _identical(a, b) -> tuple[int, int]:
    """(spikes in both, spikes in either) of two (times, units) encodings of one recording."""
    key = lambda t, u: set(zip(np.round(np.asarray(t) * 11025).astype(np.int64).tolist(), u.tolist()))  # noqa: E731
    sa, sb = key(*a), key(*b)
    return len(sa & sb), len(sa | sb)


def stages(seconds: float = 1.0, repeats: int = 5) -> dict:
    """CPU seconds of each stage for ``seconds`` of a word, minimum of ``repeats``: the
    membrane (fast bank, the default; and the exact full-rate bank), both emitting the
    time-major rows the cells read, and the hair, fibre and bushy cells."""
    from evsim.audio.cochlea import CochleaStream, hann_ramps, rms_gain
    from evsim.audio.io import read_audio

    rec = read_audio(sorted(recordings(), key=lambda r: -os.path.getsize(r[0]))[0][0]).samples
    x = np.resize(rec, int(seconds * 22050))
    x = x * hann_ramps(x.size, None) * rms_gain(x, 0.3)
    best = {"membrane": 1e9, "membrane_exact": 1e9, "membrane_recursive": 1e9, "cells": 1e9}
    for _ in range(repeats):
        for key in ("membrane_recursive", "membrane_exact", "membrane"):
            stream = CochleaStream(rng=0, membrane=key[9:] or "fast")
            start = time.process_time()
            stream.bank.prepare(x)
            pieces = stream.bank.push(x) + stream.bank.finish()
            best[key] = min(best[key], time.process_time() - start)
        start = time.process_time()
        stream._spikes(pieces)
        best["cells"] = min(best["cells"], time.process_time() - start)
    return {k: v / seconds for k, v in best.items()}


SECTIONS = ("lauscher", "proxy", "speed", "against", "accuracy", "live")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lauscher", type=int, default=0, help="recordings to run lauscher on (shortest first)")
    ap.add_argument("--lauscher-cached", action="store_true",
                    help="compare with every recording whose lauscher spikes are in results/lauscher (no lauscher run)")
    ap.add_argument("--proxy", type=int, default=50, help="recordings compared with digits_test.h5")
    ap.add_argument("--speed", type=int, default=30, help="recordings timed")
    ap.add_argument("--accuracy", default="all", help="recordings classified end to end ('all' or a number)")
    ap.add_argument("--live", type=int, default=50, help="recordings streamed live per variant")
    ap.add_argument("--quick", action="store_true", help="a few recordings per section, no lauscher")
    ap.add_argument("--against", help="another evsim checkout to compare speed and spike statistics with")
    ap.add_argument("--repeats", type=int, default=4, help="alternating runs per checkout (--against)")
    ap.add_argument("--only", help="comma-separated sections to run: lauscher,proxy,speed,accuracy,live,against")
    args = ap.parse_args(argv)
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    import numba

    numba.set_num_threads(1)
    if args.quick:
        args.proxy, args.speed, args.accuracy, args.live = 3, 3, "6", 2
    env = environment()
    results = {"environment": env}
    only = set(args.only.split(",")) if args.only else set(SECTIONS)
    if (args.lauscher or args.lauscher_cached) and "lauscher" in only:
        results["lauscher"] = fidelity_lauscher(args.lauscher, cached=args.lauscher_cached)
    if "proxy" in only:
        results["proxy"] = fidelity_proxy(args.proxy)
        print("proxy", results["proxy"], flush=True)
    if "speed" in only:
        results["speed"] = speed(args.speed)
        print("speed", results["speed"], flush=True)
    if args.against and "against" in only:
        results["against"] = against(os.path.abspath(args.against), args.speed, args.repeats)
    if "accuracy" in only:
        results["accuracy"] = accuracy(None if args.accuracy == "all" else int(args.accuracy))
        print("accuracy", results["accuracy"], flush=True)
    if "live" in only:
        results["live"] = live(args.live)
    for key in [k for k in results if k != "environment"]:
        results[f"{key}_environment"] = env
    previous = os.path.join(RESULTS_DIR, "audio.json")
    if args.only and os.path.exists(previous):          # keep the sections not rerun, with their dates
        import json

        with open(previous) as fh:
            old = json.load(fh)
        for key in SECTIONS:
            if key not in results and key in old:
                results[key] = old[key]
                results[f"{key}_environment"] = old.get(f"{key}_environment", old["environment"])
    write_results("audio", results, render(results))


def render(r: dict) -> str:
    """Markdown for benchmarks/README.md; each section says when it was measured and the load."""
    lines = []

    def when(key):
        env = r.get(f"{key}_environment", r["environment"])
        return f"({env['date_utc']} UTC, load average {', '.join(f'{x:.1f}' for x in env['load_average'])})"

    if "lauscher" in r:
        rows = [[x["file"], f"{x['seconds']:.2f}", x["lauscher_spikes"], x["evsim_spikes"],
                 f"{x['vs_lauscher']['channel_r']:.3f} ({x['ceiling']['channel_r']:.3f})",
                 f"{x['vs_lauscher']['time_r']:.4f} ({x['ceiling']['time_r']:.4f})",
                 f"{x['vs_lauscher']['total_ratio']:.3f}",
                 f"{x['lauscher_cpu_s'] / x['seconds']:.1f}", f"{x['evsim_cpu_s'] / x['seconds']:.3f}",
                 f"{x['lauscher_cpu_s'] / x['evsim_cpu_s']:.0f}x"] for x in r["lauscher"]["recordings"]]
        lines += [f"evsim against lauscher 1.0.1 {when('lauscher')} (in brackets: evsim seed 1 against seed 2, "
                  "the ceiling):", "",
                  markdown_table(["recording", "s", "lauscher spikes", "evsim spikes", "channel r", "10 ms profile r",
                                  "total evsim / lauscher", "lauscher CPU s per s", "evsim CPU s per s",
                                  "evsim speed-up"], rows), "",
                  f"Channel counts summed over these recordings: r = {r['lauscher']['pooled_channel_r']:.3f} "
                  f"(ceiling {r['lauscher']['pooled_channel_r_ceiling']:.3f}), total spikes evsim / lauscher "
                  f"{r['lauscher']['pooled_total_ratio']:.3f}.", ""]
    if "proxy" in r:
        p = r["proxy"]
        lines += [f"Proxy {when('proxy')}: evsim against the samples of digits_test.h5 ({p['n']} recordings, means; "
                  f"ceiling in brackets): channel r {p['vs_file_channel_r']:.3f} ({p['ceiling_channel_r']:.3f}), "
                  f"10 ms profile r {p['vs_file_time_r']:.4f} ({p['ceiling_time_r']:.4f}), total ratio "
                  f"{p['vs_file_total_ratio']:.3f}; channel counts pooled over the recordings r = "
                  f"{p['pooled_channel_r']:.4f}, total ratio {p['pooled_total_ratio']:.3f}.", ""]
    if "speed" in r:
        s = r["speed"]
        st = s["stages_cpu_per_audio_s"]
        exact = f", exact membrane {s['x_real_time_cpu_exact']:.1f}x" if "x_real_time_cpu_exact" in s else ""
        if "x_real_time_cpu_recursive" in s:
            exact += f", recursive membrane {s['x_real_time_cpu_recursive']:.1f}x"
        lines += [f"Speed {when('speed')} ({s['n']} recordings, {s['audio_s']:.1f} s of audio, one thread, best of "
                  f"{len(s.get('passes_cpu_s', [0]))} passes): {s['x_real_time_cpu']:.1f}x real time in CPU time "
                  f"({s['x_real_time_wall']:.1f}x wall){exact}. "
                  f"CPU s per second of a word (minimum of 5): membrane {st['membrane']:.3f} (exact bank "
                  f"{st.get('membrane_exact', float('nan')):.3f}, recursive bank "
                  f"{st.get('membrane_recursive', float('nan')):.3f}), hair and bushy cells {st['cells']:.3f}.", ""]
    if "against" in r:
        g = r["against"]
        rows = [[i + 1, f"{p['other']['cpu_per_s']:.3f}", f"{p['this']['cpu_per_s']:.3f}", f"{p['cpu_ratio']:.2f}",
                 f"{p['other']['wall_per_s']:.3f}", f"{p['this']['wall_per_s']:.3f}", f"{p['wall_ratio']:.2f}",
                 f"{p['load_average'][0]:.1f}"] for i, p in enumerate(g["repeats"])]
        lines += [f"Against `{g['checkout']}` {when('against')}: {g['n']} recordings, {g['audio_s']:.1f} s of audio, "
                  "each checkout in its own process, alternating:", "",
                  markdown_table(["pair", "other CPU s per s", "this CPU s per s", "CPU ratio", "other wall s per s",
                                  "this wall s per s", "wall ratio", "load"], rows), "",
                  f"Median: this checkout {1 / g['this_cpu_per_s_median']:.1f}x real time in CPU time "
                  f"({1 / g['this_wall_per_s_median']:.1f}x wall), the other {1 / g['other_cpu_per_s_median']:.1f}x "
                  f"({1 / g['other_wall_per_s_median']:.1f}x); ratio {g['cpu_ratio_median']:.2f} (CPU), "
                  f"{g['wall_ratio_median']:.2f} (wall).", "",
                  f"Spike statistics, this checkout (seed 1) against the other (seed 2), means over the recordings; "
                  f"in brackets the other's seed 1 against its seed 2 (the ceiling): channel r "
                  f"{g['vs_other_channel_r']:.3f} ({g['ceiling_channel_r']:.3f}), 10 ms profile r "
                  f"{g['vs_other_time_r']:.4f} ({g['ceiling_time_r']:.4f}), total ratio {g['vs_other_total_ratio']:.3f} "
                  f"({g['ceiling_total_ratio']:.3f}); pooled channel counts r = {g['pooled_channel_r']:.4f} "
                  f"({g['pooled_channel_r_ceiling']:.4f}); total spikes {g['total_spikes_this_seed1']} against "
                  f"{g['total_spikes_other_seed1']} (ratio {g['total_spikes_this_seed1'] / g['total_spikes_other_seed1']:.4f}, "
                  f"standard error {g['total_ratio_se']:.4f}). With the same seed, {100 * g['same_seed_identical']:.1f} % "
                  "of the spikes (sample, channel) are in both encodings.", ""]
    if "accuracy" in r:
        a = r["accuracy"]
        lines += [f"Accuracy {when('accuracy')}, built-in default model: {100 * a['accuracy_audio']:.1f} % on {a['n']} "
                  f"recordings encoded by evsim, {100 * a['accuracy_h5']:.1f} % on the same samples of digits_test.h5; "
                  f"{100 * a['same_prediction']:.1f} % of predictions identical.", ""]
    if "live" in r:
        rows = [[k, f"{100 * v['accuracy']:.1f} %", f"{v['block_ms_mean']:.2f}", f"{v['block_ms_p99']:.2f}",
                 f"{v['block_ms_max']:.2f}", f"{v['latency_ms']:.0f}"] for k, v in r["live"]["variants"].items()]
        lines += [f"Live {when('live')} ({r['live']['n']} recordings, 20 ms blocks, fft_size 4096):", "",
                  markdown_table(["variant", "accuracy", "ms per block (mean)", "p99", "max", "cochlea latency ms"],
                                 rows)]
    return "\n".join(lines).rstrip()

if __name__ == "__main__":
    main()
