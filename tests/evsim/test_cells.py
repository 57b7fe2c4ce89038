"""The cell registry: every registered cell runs in every engine, and every engine refuses
a kind (cell, recurrence, reset, decision, surrogate) it does not know, with an error
rather than a silent fall-through."""

from dataclasses import replace

import numpy as np
import pytest

from evsim import event, reference
from evsim.cells import CELLS, get_cell
from evsim.errors import EvsimError, ModelFileError
from tests.evsim.test_event import assert_equivalent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.strategies import inputs, models, random_case

BAD = 97   # a code no dispatcher knows


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_every_cell_runs_in_the_reference_and_the_event_engine(cell):
    ties = samples = spikes = 0
    for seed in range(12):
        model, x, lengths = random_case(seed, model_kw={"cells": (cell,), "max_neurons": 24})
        assert {l.cell for l in model.layers} == {cell}
        ties += assert_equivalent(model, x, lengths)
        samples += x.shape[0]
        spikes += sum(int(r.sum()) for r in reference.simulate(model, x, lengths, record_spikes=True).spikes)
    assert spikes > 0 and ties <= 0.05 * samples


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(cells=("adlif",), weights="dyadic", max_neurons=16), st.data())
def test_adlif_event_equals_dense_exact_ties(model, data):
    """Dyadic AdLIF models (beta_w 0, 1/2 or 1; a, b multiples of 1/4): membranes land on
    the threshold exactly, and both engines agree there (H(0) = 1); no tie is allowed."""
    x, lengths = data.draw(inputs(model.n_inputs))
    assert assert_equivalent(model, x, lengths) == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(cells=("adlif",), max_neurons=24), st.data())
def test_adlif_event_equals_dense(model, data):
    x, lengths = data.draw(inputs(model.n_inputs))
    assert assert_equivalent(model, x, lengths) <= 0.05 * x.shape[0]


def test_unknown_cell_names_are_refused():
    with pytest.raises(EvsimError, match="unknown cell 'izhikevich'; expected one of lif, adlif"):
        get_cell("izhikevich")
    model, _, _ = random_case(0, model_kw={"cells": ("lif",)})
    layer = model.layers[0]
    with pytest.raises(ModelFileError, match="layer0: unknown cell 'izhikevich'"):
        replace(layer, cell="izhikevich")
    with pytest.raises(ModelFileError, match="do not belong to a 'lif' cell"):
        replace(layer, extra={"a": np.zeros(layer.n)})
    with pytest.raises(ModelFileError, match="a 'adlif' cell needs the per-neuron parameter 'beta_w'"):
        replace(layer, cell="adlif")
    with pytest.raises(ModelFileError, match="beta_w: values outside \\[0, 1\\]"):
        replace(layer, cell="adlif", extra={"beta_w": np.full(layer.n, 1.5), "a": np.zeros(layer.n), "b": np.zeros(layer.n)})


def _tampered(model, layer_attr=None, value=None, decision=None):
    """A model whose first layer (or readout) holds a kind no engine knows: validation is
    bypassed, as a bug or a hand-edited object would."""
    layer = model.layers[0]
    if layer_attr is not None:
        object.__setattr__(layer, layer_attr, value)
    if decision is not None:
        object.__setattr__(model.readout, "decision", decision)
    return model


@pytest.mark.parametrize("attr", ["recurrence", "reset", "cell", "decision"])
def test_the_reference_refuses_unknown_kinds(attr):
    model, x, lengths = random_case(3, model_kw={"recurrences": ("conv",)})
    if attr == "decision":
        _tampered(model, decision="argmax")
    else:
        _tampered(model, attr, "bogus")
    with pytest.raises(EvsimError, match="unknown"):
        reference.simulate(model, x, lengths)


@pytest.mark.parametrize("group, field", [("rec", "kind"), ("cells", "reset"), ("cells", "kind"), ("ro", "decision")])
def test_the_event_kernel_refuses_unknown_codes(group, field):
    from evsim.kernels import event as k

    model, x, lengths = random_case(3, model_kw={"recurrences": ("conv",)})
    x, lengths = reference.check_inputs(model, x, lengths)
    lengths = np.maximum(lengths, 1)
    params = event.pack_model(model)
    codes = getattr(getattr(params, group), field).copy()
    codes[0] = BAD
    bad = k.as_plain(params._replace(**{group: getattr(params, group)._replace(**{field: codes})}))
    b, n_t, _ = x.shape
    args = (k.as_plain_state(k.zero_state(params)), np.ascontiguousarray(x), lengths,
            np.zeros((b, n_t, model.n_classes)),
            np.zeros((b, model.n_classes)), np.zeros((b, 0, int(params.ff.nrn_off[-1])), np.uint8), False,
            np.zeros(b, np.int64), np.zeros((b, len(model.layers)), np.int64), np.zeros(b, np.int64), True)
    with pytest.raises(ValueError, match="unknown"):
        k.run_batch_serial(*bad, *args)
    stream = event.EventStream(model)
    with pytest.raises(ValueError, match="unknown"):
        bad_params = params._replace(**{group: getattr(params, group)._replace(**{field: codes})})
        bad_flat = k.flatten(bad_params, k.PARAMS_SPEC, k.PARAMS_ROLES, np.float64)[0]
        k.stream_chunk(*bad_flat, *stream._state_flat, np.ascontiguousarray(x[0]), 1, np.zeros((1, model.n_classes)))


def test_event_packing_refuses_unknown_kinds():
    model, _, _ = random_case(3, model_kw={"recurrences": ("conv",)})
    with pytest.raises(EvsimError, match="unknown cell"):
        event.simulate(_tampered(model, "cell", "bogus"), np.zeros((1, 2, model.n_inputs)))


# -- the registry finds its cells, and the dispatchers are generated from it -------------

def test_the_registry_holds_every_cell_module_and_skips_the_others():
    """Every module of evsim/cells that defines KIND is registered; the CS-GRU modules and
    the shared steps (no KIND) are not."""
    import importlib
    import pkgutil

    import evsim.cells as cells

    modules = [m.name for m in pkgutil.iter_modules(cells.__path__)]
    with_kind = {importlib.import_module(f"evsim.cells.{m}").KIND.name for m in modules
                 if not m.startswith("_") and hasattr(importlib.import_module(f"evsim.cells.{m}"), "KIND")}
    assert with_kind == set(CELLS) and {"lif", "adlif"} <= with_kind
    assert "csgru" in modules and "csgru" not in CELLS and "_common" in modules
    assert [k.code for k in CELLS.values()] == sorted(k.code for k in CELLS.values())


def _write_package(root, name, modules):
    pkg = root / name
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for mod, text in modules.items():
        (pkg / f"{mod}.py").write_text(text)
    return pkg


_KIND_OF_LIF = ("from evsim.cells import lif\n"
                "KIND = lif.KIND._replace(name={name!r}, code={code})\n")


def test_discovery_takes_modules_with_kind_and_skips_the_rest(tmp_path, monkeypatch):
    from evsim.cells import discover

    pkg = _write_package(tmp_path, "fakecells_ok", {
        "alpha": _KIND_OF_LIF.format(name="alpha", code=7),
        "beta": _KIND_OF_LIF.format(name="beta", code=3),
        "helpers": "X = 1\n",                                        # no KIND: skipped
        "_private": _KIND_OF_LIF.format(name="private", code=9),    # leading underscore: skipped
    })
    monkeypatch.syspath_prepend(str(tmp_path))
    found = discover("fakecells_ok", [str(pkg)])
    assert list(found) == ["beta", "alpha"]          # in code order
    assert found["alpha"].code == 7


@pytest.mark.parametrize("modules, error, match", [
    ({"one": _KIND_OF_LIF.format(name="one", code=4), "two": _KIND_OF_LIF.format(name="two", code=4)},
     ValueError, "share a code"),
    ({"one": _KIND_OF_LIF.format(name="same", code=4), "two": _KIND_OF_LIF.format(name="same", code=5)},
     ValueError, "share a name"),
    ({"one": "KIND = 'lif'\n"}, TypeError, "not a CellKind"),
])
def test_discovery_refuses_clashes_and_impostors(tmp_path, monkeypatch, modules, error, match):
    from evsim.cells import discover

    name = f"fakecells_{abs(hash(tuple(modules.values()))) % 10**8}"
    pkg = _write_package(tmp_path, name, modules)
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(error, match=match):
        discover(name, [str(pkg)])


def _event_args(n=3, n_aux=1, n_extra=3):
    f = np.float64
    return (0, np.zeros(n), np.zeros((n_aux, n)), np.ones(n), np.zeros(n), np.full(n, 0.5), np.ones(n),
            np.ones(n), np.zeros((n_extra, n)), False, np.zeros(n, np.int64))


def _fwd_args(n=3, s=1, p=3):
    f = np.zeros
    return (f(n), f(n), f((s, n)), np.ones(n), np.full(n, 0.5), np.ones(n), np.ones(n), f((p, n)), False, 0, 5.0,
            False, f(n), f(n), f((s, n)))


def _bwd_args(n=3, t=4, s=1, p=3):
    f = np.zeros
    return (1, f((t, n)), f((t, n)), f((t, s, n)), f((t, n)), np.full(n, 0.5), np.ones(n), np.ones(n), f((p, n)),
            False, False, 0, 5.0, np.ones(n), f((2, n)), True, f(n), f((2 + p, n)))


def test_every_generated_dispatcher_runs_every_cell_and_refuses_unknown_codes():
    from evsim.kernels.event import cell_update, known_cell
    from evsim.training.cells import cell_bwd, cell_fwd

    for kind in CELLS.values():
        assert known_cell(kind.code)
        spk = _event_args()
        assert cell_update(kind.code, *spk) == 3      # input 1 + bias 0 from v = 0: every neuron fires
        cell_fwd(kind.code, *_fwd_args())
        cell_bwd(kind.code, *_bwd_args())
    assert not known_cell(BAD)
    for call in (lambda: cell_update(BAD, *_event_args()), lambda: cell_fwd(BAD, *_fwd_args()),
                 lambda: cell_bwd(BAD, *_bwd_args())):
        with pytest.raises(ValueError, match="unknown cell code"):
            call()


def test_a_generated_dispatcher_follows_the_registry_it_is_given():
    """A registry with one more cell (lif's steps under code 5) gets a branch for it."""
    from evsim.cells import generate_dispatch, generate_known, lif

    extra = dict(CELLS, lif5=lif.KIND._replace(name="lif5", code=5))
    update = generate_dispatch("cell_update", "o, v, aux, cur, bias, beta, theta, gain, extra, subtract, spk",
                               lambda c: (c.event_update, "v, aux, cur, bias, beta, theta, gain, extra, subtract, spk"),
                               {"cache": True}, cells=extra)
    assert "if kind == 5:" in update.py_func.__doc__
    assert update(5, *_event_args()) == 3
    with pytest.raises(ValueError, match="unknown cell code"):
        update(6, *_event_args())
    known = generate_known({}, cells=extra)
    assert known(5) and known(0) and not known(6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 5, 16, 17, 63, 64, 65, 200, 256])
@pytest.mark.parametrize("rate", [0.0, 0.02, 0.0625, 0.3, 1.0])
def test_spikes_and_reset_against_numpy(dtype, n, rate):
    """spikes_and_reset (flags packed 64 to a word, then one step per spike; the last
    n % 64 flags one by one) against NumPy: the spiking neurons' indices in order, and
    their membranes reset, with both resets, layers shorter and longer than a word and
    not a multiple of it, every firing rate from none to all."""
    from evsim.cells._common import spikes_and_reset

    rng = np.random.default_rng(int(rate * 1000) + n)
    theta = rng.uniform(0.5, 1.5, n).astype(dtype)
    fire = rng.random(n) < rate
    v0 = np.where(fire, theta + rng.uniform(0, 1, n), theta - rng.uniform(1e-3, 1, n)).astype(dtype)
    v0[fire & (rng.random(n) < 0.2)] = 0   # some firing flags turned off again below threshold
    v0[:1] = theta[:1] if rate > 0 else v0[:1]   # a membrane exactly at threshold spikes
    for subtract in (True, False):
        v = v0.copy()
        spk = np.full(n, -7, np.int64)
        k = spikes_and_reset(v, theta, subtract, spk)
        want = np.flatnonzero(v0 >= theta)
        assert k == want.size and np.array_equal(spk[:k], want)
        expect = v0.copy()
        expect[want] = v0[want] - theta[want] if subtract else v0[want] * dtype(0)
        assert np.array_equal(v, expect)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n", [1, 5, 63, 64, 65, 200, 256])
@pytest.mark.parametrize("rate", [0.0, 0.02, 0.3, 1.0])
def test_lif_event_update_against_numpy(dtype, n, rate):
    """The LIF event step (the update, its spike flags packed 64 to a word, the last
    n % 64 neurons one by one) against NumPy in the same type: the membranes bit for bit,
    the spiking neurons' indices in order, their resets; layers shorter and longer than a
    word and not a multiple of it."""
    from evsim.cells.lif import event_update

    rng = np.random.default_rng(int(rate * 1000) + n)
    theta = rng.uniform(0.5, 1.5, n).astype(dtype)
    beta, gain, bias = (rng.uniform(0, 1, n).astype(dtype), rng.uniform(0.5, 2, n).astype(dtype),
                        rng.normal(0, 0.1, n).astype(dtype))
    v0 = rng.uniform(-0.5, 0.4, n).astype(dtype)
    fire = rng.random(n) < rate
    fire[0] = rate > 0                                      # at least one spike when any
    cur = np.where(fire, 2 * theta / gain, rng.uniform(-1, -0.5, n)).astype(dtype)   # else below threshold
    want_v = beta * v0 + gain * (cur + bias)                # NumPy: the same operations in dtype
    want = np.flatnonzero(want_v >= theta)
    assert (want.size > 0) == (rate > 0)
    for subtract in (True, False):
        v = v0.copy()
        spk = np.full(n, -7, np.int64)
        k = event_update(v, np.zeros((0, n), dtype), cur, bias, beta, theta, gain, np.zeros((0, n), dtype),
                         subtract, spk)
        assert k == want.size and np.array_equal(spk[:k], want)
        expect = want_v.copy()
        expect[want] = want_v[want] - theta[want] if subtract else want_v[want] * dtype(0)
        assert np.array_equal(v, expect)
