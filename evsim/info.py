"""A summary of a model: architecture, parameter counts and delay distribution (``evsim info``)."""

from __future__ import annotations

import numpy as np

from .cells import CELLS
from .model import Model

__all__ = ["describe", "format_description", "delay_summary"]


#: how ``evsim info`` names the registered cells (each cell's ``display``)
CELL_DISPLAY = {name: kind.display for name, kind in CELLS.items()}


def delay_summary(delays: np.ndarray) -> dict:
    """min, max, mean, median and a histogram {delay: count} of integer delays."""
    delays = np.asarray(delays).ravel()      # a CS-GRU layer's are (C, P)
    if delays.size == 0:
        return {}
    counts = np.bincount(delays)
    return {
        "min": int(delays.min()), "max": int(delays.max()),
        "mean": float(delays.mean()), "median": float(np.median(delays)),
        "histogram": {str(d): int(c) for d, c in enumerate(counts) if c},
    }


def describe(model: Model) -> dict:
    """A JSON-ready description of ``model``."""
    meta = model.metadata
    layers = []
    for i, l in enumerate(model.layers):
        if getattr(l, "cell", None) == "csgru":       # a CS-GRU layer (evsim.csgru_layer)
            layers.append(_describe_csgru(i, l))
            continue
        entry = {
            "index": i, "neurons": l.n, "inputs": l.n_in, "cell": l.cell, "reset": l.reset,
            "recurrence": l.recurrence, "kernel_size": l.kernel_size or None,
            "params": l.n_params(), "recurrent_params": l.n_recurrent_params(),
            "beta": [float(l.beta.min()), float(l.beta.max())],
            "threshold": [float(l.threshold.min()), float(l.threshold.max())],
            "gain": [float(l.gain.min()), float(l.gain.max())],
        }
        if l.recurrence != "none":
            entry["delays"] = delay_summary(l.delays)
        layers.append(entry)
    return {
        "dt_ms": meta.dt_ms, "input_channels": meta.input_channels, "pool": meta.pool,
        "inputs": model.n_inputs, "n_steps": meta.n_steps,
        "classes": model.n_classes, "class_names": list(model.class_names),
        "layers": layers,
        "readout": {"inputs": model.readout.weight.shape[1], "classes": model.n_classes,
                    "decision": model.readout.decision},
        "params_total": model.n_params(),
        "params_recurrent": model.n_recurrent_params(),
        "max_delay": model.max_delay,
        "provenance": meta.provenance,
    }


def format_description(d: dict, path: str = "") -> str:
    """Human-readable text for :func:`describe`'s output."""
    out = []
    if path:
        out.append(f"model: {path}")
    steps = f", {d['n_steps']} steps" if d["n_steps"] else ""
    out.append(f"input: {d['input_channels']} channels pooled by {d['pool']} -> {d['inputs']} inputs, dt {d['dt_ms']:g} ms{steps}")
    for l in d["layers"]:
        if l.get("kind") == "csgru":
            out.extend(_format_csgru(l))
            continue
        rec = l["recurrence"] if l["recurrence"] != "conv" else f"conv k={l['kernel_size']}"
        out.append(f"layer{l['index']}: {l['inputs']} -> {l['neurons']} {CELL_DISPLAY.get(l['cell'], l['cell'])}, reset {l['reset']}, recurrence {rec}, "
                   f"{l['params']} params ({l['recurrent_params']} recurrent), beta {l['beta'][0]:.3g}..{l['beta'][1]:.3g}")
        if "delays" in l and l["delays"]:
            dl = l["delays"]
            out.append(f"        delays (steps): min {dl['min']}, median {dl['median']:g}, mean {dl['mean']:.2f}, max {dl['max']}")
    out.append(f"readout: {d['readout']['inputs']} -> {d['classes']} classes, decision {d['readout']['decision']}")
    out.append(f"parameters: {d['params_total']} total, {d['params_recurrent']} recurrent")
    names = d["class_names"]
    shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
    out.append(f"classes: {shown}")
    prov = d.get("provenance") or {}
    for key in ("recipe", "test_accuracy", "validation_accuracy", "trained"):
        if key in prov:
            out.append(f"{key.replace('_', ' ')}: {_shown(key, prov[key])}")
    return "\n".join(out)


def _shown(key: str, value) -> str:
    """A provenance value for text output: accuracies (fractions) as percentages with two
    decimals."""
    if key.endswith("accuracy") and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{100 * value:.2f} %"
    if key == "validation_accuracy" and value is None:
        return "none (trained on every training speaker)"
    return str(value)


def _describe_csgru(i: int, layer) -> dict:
    """The :func:`describe` entry of a CS-GRU layer."""
    return {"index": i, "kind": "csgru", "cell": "csgru", "neurons": layer.n, "inputs": layer.n_in,
            "channels": layer.channels, "in_channels": layer.in_channels, "positions": layer.positions,
            "kernel_size": layer.kernel_size, "gate": layer.gate, "detach_reset": layer.detach_reset,
            "threshold": layer.theta, "recurrence": "csgru",
            "params": layer.n_params(), "recurrent_params": layer.n_recurrent_params(),
            "delays": delay_summary(layer.delays)}


def _format_csgru(l: dict) -> list:
    gate = {"current": "z from i_t (CS-GRU)", "input": "z from x_t (SpikGRU-style)"}.get(l["gate"], l["gate"])
    out = [f"layer{l['index']}: {l['inputs']} ({l['in_channels']} x {l['positions']}) -> {l['neurons']} CS-GRU "
           f"({l['channels']} channels x {l['positions']} positions), kernel k={l['kernel_size']}, gate {gate}, "
           f"{l['params']} params ({l['recurrent_params']} recurrent)"]
    dl = l["delays"]
    out.append(f"        delays (steps): min {dl['min']}, median {dl['median']:g}, mean {dl['mean']:.2f}, max {dl['max']}")
    return out
