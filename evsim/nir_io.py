"""NIR (Neuromorphic Intermediate Representation) export and import of evsim models.

Needs the optional extra ``evsim[nir]`` (the ``nir`` package, 1.0.x); imported lazily.

Units (the trap between frameworks).  Time is in **seconds**; ``dt = dt_ms / 1000``.  NIR's
``LIF`` is the ODE ``tau dv/dt = (v_leak - v) + r I``; evsim's step
``v_t = beta v_{t-1} + g I_t`` is its forward-Euler step of length ``dt``, the convention
snnTorch's NIR export uses, so::

    tau = dt / (1 - beta)          beta = 1 - dt / tau
    r   = g / (1 - beta)           g    = r dt / tau
    v_leak = 0, v_threshold = theta, v_reset = 0

and the same for the readout's ``LI``.  A neuron without leak (beta = 1) has no finite tau
and is refused.  ``Delay.delay`` is in seconds, ``d_j * dt`` for a delay of ``d_j`` steps.

Faithful graph (default), per hidden layer ``l``::

    ... -> layer{l}.affine (Affine: W, b) -> layer{l}.lif (LIF)
           layer{l}.lif -> layer{l}.delay (Delay, one delay per neuron)
                        -> layer{l}.rec (Conv1d: kernel K, 'same' padding over the neuron
                                         axis; or Linear: W_rec) -> layer{l}.lif
    last lif -> readout.affine (Affine) -> readout.li (LI) -> output

Every signal carries a leading axis of size 1 (shape ``(1, n)``: one channel of ``n``
positions), the layout NIR's ``Conv1d`` reads and writes, so the conv recurrence is a real
``Conv1d`` (weight ``(1, 1, k)``, cross-correlation as in PyTorch: target ``i`` gets
``K[m] z[i + m - k//2]``, which is evsim's rule; no flip).

What NIR cannot say is written in the graph's metadata (``evsim`` holds the exact JSON):

* ``dt`` (seconds per step);
* ``cycle_convention``: a spike of step ``t`` that goes round a cycle ``LIF -> Delay ->
  Conv1d/Linear -> LIF`` arrives at step ``t + 1 + delay / dt`` (the one-step lag every
  discrete-time simulator puts on a recurrent edge), so a zero delay is the plain
  recurrence;
* ``spike_condition``: ``v >= v_threshold`` (NIR writes ``v > v_threshold``);
* per LIF ``reset``: ``zero`` (NIR's ``v_reset = 0``) or ``subtract`` (``v - theta``,
  applied before the decay; NIR has no subtractive reset);
* ``decision``: the class score is ``sum_t softmax(u_t)`` of the readout (or ``sum_t u_t``).

Portable graph (``portable=True``): what today's importers accept: plain ``(n,)`` shapes,
no ``Delay`` node, a conv recurrence written as the equivalent ``(n, n)`` Toeplitz
``Linear``.  The learned delays are lost (a warning says so); the metadata still holds dt
and the conventions.

Import (:func:`read_nir`, and ``evsim.load_model("x.nir")``) takes either form, and graphs
written by other tools when they fit evsim's layers: ``Input -> (Affine|Linear -> LIF
[recurrence])+ -> Affine|Linear -> LI -> Output``, with a recurrence ``LIF [-> Delay] ->
Conv1d|Linear -> LIF``.  A cycle without ``Delay`` is a zero delay.  The graph metadata
must give ``dt``; without evsim's metadata, inputs are not pooled, classes are numbered,
resets are ``zero`` and the decision is ``sum_softmax``.  Any other node or wiring is
refused with an error that names the node.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile

import numpy as np

from .errors import EvsimError, ModelFileError
from .model import RECURRENCES, HiddenLayer, Model, ModelMetadata, Readout

__all__ = ["to_nir_graph", "from_nir_graph", "export_nir", "read_nir", "nir_node_counts"]

CYCLE_CONVENTION = ("a spike of step t sent round a cycle LIF -> Delay -> Conv1d/Linear -> LIF "
                    "arrives at step t + 1 + delay/dt")
SPIKE_CONDITION = "v >= v_threshold"


def _nir():
    try:
        import nir
    except ImportError as exc:
        raise EvsimError("NIR files need the optional extra: pip install 'evsim[nir]' (the nir package)") from exc
    return nir


# -- units ------------------------------------------------------------------------------
def decay_to_nir(beta: np.ndarray, gain: np.ndarray, dt: float, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-step (beta, g) -> NIR (tau seconds, r), float64; see the module docstring."""
    b = np.asarray(beta, np.float64)
    if np.any(b >= 1):
        raise EvsimError(f"{where}: beta = 1 (no leak) has no finite NIR time constant tau = dt / (1 - beta); "
                         "export needs beta < 1")
    one_minus = 1.0 - b
    return dt / one_minus, np.asarray(gain, np.float64) / one_minus


def decay_from_nir(tau, r, dt: float, where: str) -> tuple[np.ndarray, np.ndarray]:
    """NIR (tau seconds, r) -> per-step (beta, g), float64; refuses tau < dt (negative beta)."""
    tau = np.asarray(tau, np.float64)
    r = np.asarray(r, np.float64)
    if not (np.all(np.isfinite(tau)) and np.all(np.isfinite(r))):
        raise ModelFileError(f"{where}: tau and r must be finite")
    if np.any(tau < dt * (1 - 1e-12)):
        raise ModelFileError(f"{where}: tau {tau.min():g} s is shorter than the step dt = {dt:g} s; "
                             "the per-step decay 1 - dt/tau would be negative")
    beta = np.clip(1.0 - dt / tau, 0.0, 1.0)
    return beta, r * dt / tau


def toeplitz_from_kernel(kernel: np.ndarray, n: int) -> np.ndarray:
    """The (n, n) matrix of a 'same'-padded conv: T[i, j] = K[j - i + k//2] inside the kernel."""
    k = kernel.shape[0]
    t = np.zeros((n, n), np.float32)
    for m in range(k):
        off = m - k // 2
        idx = np.arange(max(0, -off), min(n, n - off))
        t[idx, idx + off] = kernel[m]
    return t


# -- export -----------------------------------------------------------------------------
def _layer_kind(layer) -> str:
    """The cell kind of a layer; evsim's exporter knows only LIF layers."""
    kind = getattr(layer, "cell", None) or getattr(layer, "kind", None) or "lif"
    if type(layer) is not HiddenLayer:
        kind = type(layer).__name__ if kind == "lif" else kind
    return str(kind)


def _check_exportable(model: Model) -> None:
    if not isinstance(model, Model):
        raise EvsimError(f"expected an evsim Model, got {type(model).__name__}")
    for i, layer in enumerate(model.layers):
        kind = _layer_kind(layer)
        if kind != "lif":
            raise EvsimError(f"layer{i}: cell kind {kind!r} cannot be exported to NIR; "
                             "the exporter knows LIF layers (recurrence none, dense or conv)")
        if layer.recurrence not in RECURRENCES:
            raise EvsimError(f"layer{i}: unknown recurrence {layer.recurrence!r}; expected one of {', '.join(RECURRENCES)}")


def _metadata(model: Model, portable: bool) -> dict:
    meta = model.metadata
    exact = {
        "dt_ms": float(meta.dt_ms), "input_channels": int(meta.input_channels), "pool": int(meta.pool),
        "n_steps": meta.n_steps, "class_names": list(meta.class_names), "provenance": meta.provenance,
        "layers": [{"reset": l.reset, "recurrence": l.recurrence} for l in model.layers],
        "readout": {"decision": model.readout.decision}, "portable": bool(portable),
    }
    return {
        "source": "evsim", "dt": float(meta.dt_ms) / 1000.0, "time_unit": "s",
        "discretisation": "forward Euler: beta = 1 - dt/tau, g = r dt/tau",
        "cycle_convention": CYCLE_CONVENTION, "spike_condition": SPIKE_CONDITION,
        "reset": ", ".join(sorted({l.reset for l in model.layers})),
        "subtractive_reset": "v - v_threshold, applied before the decay (per LIF in its metadata 'reset')",
        "decision": ("sum over steps of softmax(readout)" if model.readout.decision == "sum_softmax"
                     else "sum over steps of the readout membrane"),
        "delays": "lost (portable graph)" if portable else "Delay nodes, seconds",
        "evsim": json.dumps(exact, sort_keys=True),
    }


def to_nir_graph(model: Model, portable: bool = False):
    """The NIR graph of ``model`` and a list of warnings (see the module docstring)."""
    nir = _nir()
    _check_exportable(model)
    dt = float(model.metadata.dt_ms) / 1000.0
    lead = () if portable else (1,)
    nodes = {"input": nir.Input(input_type={"input": np.array(lead + (model.n_inputs,))})}
    edges = []
    prev = "input"
    warnings = []
    for i, layer in enumerate(model.layers):
        p = f"layer{i}."
        n = layer.n
        nodes[p + "affine"] = nir.Affine(weight=np.asarray(layer.weight).reshape(lead + layer.weight.shape),
                                         bias=np.asarray(layer.bias).reshape(lead + (n,)))
        tau, r = decay_to_nir(layer.beta, layer.gain, dt, f"layer{i}")
        shape = lead + (n,)
        nodes[p + "lif"] = nir.LIF(tau=tau.reshape(shape), r=r.reshape(shape), v_leak=np.zeros(shape),
                                   v_threshold=np.asarray(layer.threshold, np.float64).reshape(shape),
                                   v_reset=np.zeros(shape), metadata={"reset": layer.reset})
        edges += [(prev, p + "affine"), (p + "affine", p + "lif")]
        if layer.recurrence != "none":
            edges += _recurrence(nir, nodes, layer, p, dt, portable)
            if portable and layer.max_delay > 0:
                warnings.append(f"layer{i}: {int(np.count_nonzero(layer.delays))} learned delays (up to "
                                f"{layer.max_delay} steps) are lost in the portable graph")
        if portable and layer.reset == "subtract":
            warnings.append(f"layer{i}: the subtractive reset is stated only in the metadata; "
                            "other tools will reset to v_reset = 0")
        prev = p + "lif"
    ro = model.readout
    c = ro.n_classes
    nodes["readout.affine"] = nir.Affine(weight=np.asarray(ro.weight).reshape(lead + ro.weight.shape),
                                         bias=np.asarray(ro.bias).reshape(lead + (c,)))
    tau, r = decay_to_nir(ro.beta, ro.gain, dt, "readout")
    nodes["readout.li"] = nir.LI(tau=tau.reshape(lead + (c,)), r=r.reshape(lead + (c,)), v_leak=np.zeros(lead + (c,)))
    nodes["output"] = nir.Output(output_type={"output": np.array(lead + (c,))})
    edges += [(prev, "readout.affine"), ("readout.affine", "readout.li"), ("readout.li", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=_metadata(model, portable)), warnings


def _recurrence(nir, nodes, layer: HiddenLayer, p: str, dt: float, portable: bool) -> list:
    """Add the recurrence nodes of one layer; return its edges (a cycle back into the LIF)."""
    n = layer.n
    if portable:
        w = layer.recurrent if layer.recurrence == "dense" else toeplitz_from_kernel(layer.recurrent, n)
        nodes[p + "rec"] = nir.Linear(weight=np.asarray(w, np.float32))
        return [(p + "lif", p + "rec"), (p + "rec", p + "lif")]
    nodes[p + "delay"] = nir.Delay(delay=(layer.delays.astype(np.float64) * dt).reshape(1, n))
    if layer.recurrence == "conv":
        k = layer.kernel_size
        nodes[p + "rec"] = nir.Conv1d(input_shape=n, weight=np.asarray(layer.recurrent).reshape(1, 1, k),
                                      stride=1, padding="same", dilation=1, groups=1, bias=np.zeros(1, np.float32))
    elif layer.recurrence == "dense":
        nodes[p + "rec"] = nir.Linear(weight=np.asarray(layer.recurrent).reshape(1, n, n))
    else:
        raise EvsimError(f"{p}: unknown recurrence {layer.recurrence!r}")
    return [(p + "lif", p + "delay"), (p + "delay", p + "rec"), (p + "rec", p + "lif")]


def export_nir(model: Model, path: str | os.PathLike, portable: bool = False):
    """Write ``model`` as a NIR file (HDF5) atomically; return the graph and the warnings."""
    nir = _nir()
    graph, warnings = to_nir_graph(model, portable=portable)
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise EvsimError(f"cannot write {path}: directory {directory} does not exist")
    from ._io import publish

    fd, tmp = tempfile.mkstemp(prefix=".evsim-", suffix=".nir.tmp", dir=directory)
    os.close(fd)
    try:
        nir.write(tmp, graph)
        publish(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return graph, warnings


def nir_node_counts(graph) -> dict[str, int]:
    """Nodes of each NIR type in ``graph``, e.g. {"LIF": 4, "Delay": 3, ...}."""
    counts: dict[str, int] = {}
    for node in graph.nodes.values():
        counts[type(node).__name__] = counts.get(type(node).__name__, 0) + 1
    return dict(sorted(counts.items()))


# -- import -----------------------------------------------------------------------------
def read_nir(path: str | os.PathLike) -> Model:
    """Read a NIR file (written by :func:`export_nir` or another tool) as an evsim Model."""
    nir = _nir()
    path = os.fspath(path)
    if not os.path.exists(path):
        raise ModelFileError(f"model file not found: {path}")
    if os.path.isdir(path):
        raise ModelFileError(f"model path is a directory, not a file: {path}")
    try:
        graph = nir.read(path)
    except Exception as exc:  # nir raises ValueError, KeyError, AssertionError, OSError, ...
        raise ModelFileError(f"cannot read NIR file {path}: {type(exc).__name__}: {exc}") from exc
    return from_nir_graph(graph, source=path)


_KNOWN_NODES = ("Input", "Output", "Affine", "Linear", "LIF", "LI", "Delay", "Conv1d")
_WIRING = ("evsim runs Input -> (Affine|Linear -> LIF, with an optional recurrence LIF [-> Delay] -> "
           "Conv1d|Linear -> LIF)+ -> Affine|Linear -> LI -> Output")


class _Walk:
    """Successors and predecessors of the graph's nodes, with errors that name the node."""

    def __init__(self, graph, source: str):
        self.nodes = dict(graph.nodes)
        self.source = source
        self.succ = {k: [] for k in self.nodes}
        self.pred = {k: [] for k in self.nodes}
        for a, b in graph.edges:
            for end in (a, b):
                if end not in self.nodes:
                    raise ModelFileError(f"{source}: an edge names node {end!r}, which the graph does not have")
            self.succ[a].append(b)
            self.pred[b].append(a)
        for name, node in self.nodes.items():
            if self.kind(name) not in _KNOWN_NODES:
                raise ModelFileError(f"{source}: node {name!r} is a {self.kind(name)}, which evsim cannot run; {_WIRING}")
        self.visited: set[str] = set()

    def kind(self, name: str) -> str:
        return type(self.nodes[name]).__name__

    def fail(self, name: str, what: str):
        raise ModelFileError(f"{self.source}: node {name!r} ({self.kind(name)}): {what}; {_WIRING}")

    def one_of(self, names: list[str], at: str, direction: str) -> str:
        if len(names) != 1:
            self.fail(at, f"has {len(names)} {direction} where evsim expects one ({', '.join(names) or 'none'})")
        return names[0]

    def only(self, kind: str) -> str:
        names = [k for k in self.nodes if self.kind(k) == kind]
        if len(names) != 1:
            raise ModelFileError(f"{self.source}: the graph has {len(names)} {kind} nodes; evsim runs graphs with exactly one")
        return names[0]


def _squeeze(arr, ndim: int, walk: _Walk, name: str, field: str) -> np.ndarray:
    """``arr`` with leading axes of size 1 removed down to ``ndim`` axes (the faithful layout)."""
    a = np.asarray(arr)
    while a.ndim > ndim and a.shape[0] == 1:
        a = a[0]
    if a.ndim != ndim:
        walk.fail(name, f"{field} has shape {np.shape(arr)}, expected {ndim} axes (after leading axes of size 1)")
    return a


def _feedforward(walk: _Walk, name: str) -> tuple[np.ndarray, np.ndarray]:
    node = walk.nodes[name]
    if walk.kind(name) not in ("Affine", "Linear"):
        walk.fail(name, "expected an Affine or Linear feed-forward node here")
    if name in walk.visited:
        walk.fail(name, "is reached twice: a cycle that is not a layer's recurrence")
    w = _squeeze(node.weight, 2, walk, name, "weight")
    b = _squeeze(node.bias, 1, walk, name, "bias") if walk.kind(name) == "Affine" else np.zeros(w.shape[0])
    if b.shape != (w.shape[0],):
        walk.fail(name, f"bias has {b.shape[0]} entries for {w.shape[0]} outputs")
    walk.visited.add(name)
    return w, b


def _neuron(walk: _Walk, name: str, n: int, dt: float, spiking: bool) -> dict:
    node = walk.nodes[name]
    fields = ("tau", "r", "v_leak") + (("v_threshold", "v_reset") if spiking else ())
    vals = {f: _squeeze(getattr(node, f), 1, walk, name, f).astype(np.float64) for f in fields}
    for f, v in vals.items():
        if v.shape != (n,):
            walk.fail(name, f"{f} has {v.shape[0]} entries, but {n} neurons are fed to it")
    if np.any(vals["v_leak"] != 0):
        walk.fail(name, "v_leak is not 0; evsim's neurons leak towards 0")
    if spiking and np.any(vals["v_reset"] != 0):
        walk.fail(name, "v_reset is not 0; evsim resets to 0 or subtracts the threshold")
    beta, gain = decay_from_nir(vals["tau"], vals["r"], dt, f"{walk.source}: node {name!r}")
    walk.visited.add(name)
    return {"beta": beta, "gain": gain, "threshold": vals.get("v_threshold")}


def _recurrence_of(walk: _Walk, lif: str, n: int, dt: float):
    """(kind, recurrent weights, delays in steps, other successors, last recurrent node) of a LIF."""
    rec, nxt = None, []
    for s in walk.succ[lif]:
        path = [s] if walk.kind(s) != "Delay" else [s] + walk.succ[s][:1]
        if walk.kind(path[-1]) in ("Conv1d", "Linear") and walk.succ[path[-1]] == [lif]:
            if rec is not None:
                walk.fail(lif, "has two recurrences")
            rec = path
        else:
            nxt.append(s)
    if rec is None:
        return "none", np.zeros(0, np.float32), None, nxt, None
    for node in rec:
        walk.visited.add(node)
    steps = np.zeros(n)
    if len(rec) == 2:
        if len(walk.succ[rec[0]]) != 1:
            walk.fail(rec[0], "a Delay must feed exactly one recurrent node")
        steps = _squeeze(walk.nodes[rec[0]].delay, 1, walk, rec[0], "delay").astype(np.float64) / dt
        if steps.shape != (n,):
            walk.fail(rec[0], f"has {steps.shape[0]} delays for {n} neurons")
        if not np.all(np.isfinite(steps)) or np.any(np.abs(steps - np.rint(steps)) > 1e-6 * np.maximum(1, steps)):
            walk.fail(rec[0], f"delays are not whole multiples of dt = {dt:g} s")
        if np.any(steps < -1e-9):
            walk.fail(rec[0], "negative delay")
    for p in walk.pred[rec[0]]:
        if p != lif:
            walk.fail(rec[0], f"is also fed by {p!r}; a recurrence starts at its own LIF only")
    kind, weights = _recurrent_weights(walk, rec[-1], n)
    return kind, weights, np.rint(steps).astype(np.int64), nxt, rec[-1]


def _recurrent_weights(walk: _Walk, name: str, n: int):
    node = walk.nodes[name]
    if walk.kind(name) == "Linear":
        w = _squeeze(node.weight, 2, walk, name, "weight")
        if w.shape != (n, n):
            walk.fail(name, f"recurrent weight has shape {w.shape}, expected ({n}, {n})")
        return "dense", w
    w = np.asarray(node.weight)
    if w.ndim != 3 or w.shape[:2] != (1, 1) or w.shape[2] % 2 == 0:
        walk.fail(name, f"weight has shape {w.shape}; evsim's conv recurrence is one kernel of odd length, (1, 1, k)")
    k = w.shape[2]
    for f in ("stride", "dilation", "groups"):
        if np.any(np.asarray(getattr(node, f)) != 1):
            walk.fail(name, f"{f} = {getattr(node, f)!r}; evsim's conv recurrence has {f} 1")
    pad = node.padding
    pad = pad.decode() if isinstance(pad, bytes) else pad
    if not (pad == "same" or (not isinstance(pad, str) and np.all(np.asarray(pad) == k // 2))):
        walk.fail(name, f"padding {pad!r}; evsim's conv recurrence keeps n neurons ('same', or {k // 2})")
    if np.any(np.asarray(node.bias) != 0):
        walk.fail(name, "has a bias; evsim's recurrence has none (fold it into the layer's Affine bias)")
    return "conv", w[0, 0]


def _graph_metadata(graph, source: str) -> tuple[float, dict]:
    meta = dict(graph.metadata or {})
    if "dt" not in meta:
        raise ModelFileError(f"{source}: the graph's metadata has no 'dt' (seconds per step); evsim needs it "
                             "to turn the time constants tau and the Delay times into steps")
    try:
        dt = float(np.asarray(meta["dt"]).item())
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{source}: metadata dt = {meta['dt']!r}; expected seconds per step") from exc
    if not (np.isfinite(dt) and dt > 0):
        raise ModelFileError(f"{source}: metadata dt = {dt!r}; expected a positive number of seconds")
    exact = {}
    if "evsim" in meta:
        try:
            exact = json.loads(meta["evsim"])
        except (TypeError, ValueError) as exc:
            raise ModelFileError(f"{source}: metadata 'evsim' is not valid JSON ({exc})") from exc
        if not isinstance(exact, dict):
            raise ModelFileError(f"{source}: metadata 'evsim' must be a JSON object")
    return dt, exact


def from_nir_graph(graph, source: str = "NIR graph") -> Model:
    """The evsim Model of a NIR graph (see the module docstring for what is accepted)."""
    walk = _Walk(graph, source)
    dt, exact = _graph_metadata(graph, source)
    layer_meta = exact.get("layers") or []
    start = walk.only("Input")
    walk.visited.add(start)
    current = walk.one_of(walk.succ[start], start, "successors")
    layers = []
    while True:
        w, b = _feedforward(walk, current)
        cell = walk.one_of(walk.succ[current], current, "successors")
        if walk.kind(cell) == "LI":
            break
        if walk.kind(cell) != "LIF":
            walk.fail(cell, "expected a LIF (hidden layer) or LI (readout) after a feed-forward node")
        i = len(layers)
        nrn = _neuron(walk, cell, w.shape[0], dt, spiking=True)
        kind, rec, delays, nxt, rec_end = _recurrence_of(walk, cell, w.shape[0], dt)
        if sorted(walk.pred[cell]) != sorted([current] + ([rec_end] if rec_end else [])):
            walk.fail(cell, f"is fed by {', '.join(walk.pred[cell])}; a layer takes one feed-forward node and its own recurrence")
        lm = layer_meta[i] if i < len(layer_meta) and isinstance(layer_meta[i], dict) else {}
        reset = (walk.nodes[cell].metadata or {}).get("reset", lm.get("reset", "zero"))
        layers.append(HiddenLayer(weight=w, bias=b, beta=nrn["beta"], threshold=nrn["threshold"], gain=nrn["gain"],
                                  reset=str(reset), recurrence=kind, recurrent=rec,
                                  delays=delays if kind != "none" else None, name=f"layer{i}"))
        current = walk.one_of(nxt, cell, "feed-forward successors")
    ro = _neuron(walk, cell, w.shape[0], dt, spiking=False)
    out = walk.one_of(walk.succ[cell], cell, "successors")
    if walk.kind(out) != "Output":
        walk.fail(out, "expected the Output after the readout LI")
    walk.visited.add(out)
    for name in walk.nodes:
        if name not in walk.visited:
            walk.fail(name, "is not on the path from the Input to the Output")
    if not layers:
        raise ModelFileError(f"{source}: no hidden LIF layer before the readout; {_WIRING}")
    ro_meta = exact.get("readout")
    decision = ro_meta.get("decision", "sum_softmax") if isinstance(ro_meta, dict) else "sum_softmax"
    readout = Readout(weight=w, bias=b, beta=ro["beta"], gain=ro["gain"], decision=decision)
    return Model(layers=tuple(layers), readout=readout, metadata=_model_metadata(exact, dt, layers[0].n_in, source))


def _model_metadata(exact: dict, dt: float, n_inputs: int, source: str) -> ModelMetadata:
    dt_ms = exact.get("dt_ms", dt * 1000.0)
    if not np.isclose(float(dt_ms), dt * 1000.0, rtol=1e-9, atol=0):
        raise ModelFileError(f"{source}: metadata dt = {dt:g} s disagrees with evsim's dt_ms = {dt_ms!r}")
    try:
        return ModelMetadata(dt_ms=float(dt_ms), input_channels=exact.get("input_channels", n_inputs),
                             pool=exact.get("pool", 1), n_steps=exact.get("n_steps"),
                             class_names=tuple(exact.get("class_names", ())), provenance=exact.get("provenance", {}))
    except TypeError as exc:
        raise ModelFileError(f"{source}: bad evsim metadata ({exc})") from exc
