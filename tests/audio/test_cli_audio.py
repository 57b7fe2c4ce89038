"""`evsim encode`, `evsim run --input <recordings>` and `evsim listen` as a user runs them."""

import json

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from evsim.cli.main import evsim
from evsim.audio.cochlea import encode_waveform
from evsim.audio.io import read_audio

from .conftest import tone, word_like, write_wav


def invoke(*args):
    return CliRunner().invoke(evsim, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("words")
    for k, word in enumerate(("zero", "one")):
        (root / word).mkdir()
        for i in range(2):
            write_wav(root / word / f"{i}.wav", word_like(0.3, seed=10 * k + i))
    return root


def test_encode_a_class_folder(class_folder, tmp_path):
    out = tmp_path / "enc.h5"
    res = invoke("encode", class_folder, "-o", out, "--seed", 3)
    assert res.exit_code == 0, res.output
    assert res.output.strip().startswith(f"wrote {out}: 4 samples, ") and "with labels, 2 classes" in res.output
    with h5py.File(out) as h5:
        assert h5["labels"][()].tolist() == [0, 0, 1, 1]                # sorted folders: one, zero
        assert [k.decode() for k in h5["extra/keys"][()]] == ["one", "zero"]
        times, units = h5["spikes/times"][0], h5["spikes/units"][0]
        assert json.loads(h5.attrs["cochlea"])["seed"] == 3
        assert json.loads(h5.attrs["cochlea"])["membrane"] == "fast"
    rec = read_audio(class_folder / "one" / "0.wav")
    t, u = encode_waveform(rec.samples, rng=np.random.default_rng(3))    # the first file's draw
    assert np.array_equal(units, u) and np.allclose(times, t, atol=1e-6)
    again = tmp_path / "again.h5"
    invoke("encode", class_folder, "-o", again, "--seed", 3)
    with h5py.File(out) as a, h5py.File(again) as b:
        assert all(np.array_equal(a["spikes/units"][i], b["spikes/units"][i]) for i in range(4))


def test_encode_with_the_exact_membrane(class_folder, tmp_path):
    out = tmp_path / "exact.h5"
    res = invoke("encode", class_folder / "one", "-o", out, "--seed", 3, "--exact-membrane")
    assert res.exit_code == 0, res.output
    rec = read_audio(class_folder / "one" / "0.wav")
    t, u = encode_waveform(rec.samples, rng=np.random.default_rng(3), exact=True)
    with h5py.File(out) as h5:
        assert json.loads(h5.attrs["cochlea"])["membrane"] == "exact"
        assert np.array_equal(h5["spikes/units"][0], u) and np.allclose(h5["spikes/times"][0], t, atol=1e-6)


def test_encode_with_the_recursive_membrane(class_folder, tmp_path):
    """--membrane recursive: the shipped coefficients (no fit), recorded in the file; an
    unknown bank is refused by click before anything is read."""
    out = tmp_path / "rec.h5"
    res = invoke("encode", class_folder / "one", "-o", out, "--seed", 3, "--membrane", "recursive")
    assert res.exit_code == 0, res.output
    assert "fitting" not in res.output
    rec = read_audio(class_folder / "one" / "0.wav")
    t, u = encode_waveform(rec.samples, rng=np.random.default_rng(3), membrane="recursive")
    with h5py.File(out) as h5:
        assert json.loads(h5.attrs["cochlea"])["membrane"] == "recursive"
        assert np.array_equal(h5["spikes/units"][0], u) and np.allclose(h5["spikes/times"][0], t, atol=1e-6)
    bad = invoke("encode", class_folder / "one", "-o", tmp_path / "bad.h5", "--membrane", "iir")
    assert bad.exit_code != 0 and "'iir' is not one of" in bad.output and not (tmp_path / "bad.h5").exists()


def test_run_on_a_recording_equals_run_on_its_encoding(class_folder, tmp_path):
    out = tmp_path / "enc.h5"
    invoke("encode", class_folder, "-o", out)
    direct = json.loads(invoke("run", "--input", class_folder, "--json").output)
    via_file = json.loads(invoke("run", "--input", out, "--json").output)
    assert [s["prediction"] for s in direct["samples"]] == [s["prediction"] for s in via_file["samples"]]
    assert [s["score"] for s in direct["samples"]] == pytest.approx([s["score"] for s in via_file["samples"]])
    # folder names that are the model's classes give labels, hence an accuracy
    assert direct["accuracy"] is not None and [s["label"] for s in direct["samples"]] == [1, 1, 0, 0]
    one = invoke("run", "--input", class_folder / "zero" / "0.wav")
    lines = one.output.splitlines()
    assert one.exit_code == 0 and lines[0].startswith("model: default (built-in); input: ") and lines[0].endswith("0.wav; engine: dense (auto, for 1 sample, float32)")
    assert lines[2].startswith("sample 0: ")


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_bytes(b"RIFF....garbage"), "not a readable WAV file"),
    (lambda p: write_wav(p, np.zeros(2000)), "silent"),
])
def test_bad_recordings_give_one_error_line(tmp_path, make, message):
    path = tmp_path / "bad.wav"
    make(path)
    for args in (("encode", path, "-o", tmp_path / "out.h5"), ("run", "--input", path)):
        res = CliRunner().invoke(evsim, [str(a) for a in args])
        assert res.exit_code == 1 and res.output.startswith("Error: ") and message in res.output
        assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not (tmp_path / "out.h5").exists() and not list(tmp_path.glob(".evsim-*"))


def test_encode_errors(tmp_path):
    res = CliRunner().invoke(evsim, ["encode", str(tmp_path / "none.wav"), "-o", str(tmp_path / "o.h5")])
    assert res.exit_code == 1 and "Error: not found" in res.output
    (tmp_path / "notes.txt").write_text("x")
    res = CliRunner().invoke(evsim, ["encode", str(tmp_path / "notes.txt"), "-o", str(tmp_path / "o.h5")])
    assert res.exit_code == 1 and "not an audio file" in res.output
    write_wav(tmp_path / "long.wav", tone(300, 2.0))
    res = CliRunner().invoke(evsim, ["encode", str(tmp_path / "long.wav"), "-o", str(tmp_path / "o.h5"),
                                     "--max-seconds", "1"])
    assert res.exit_code == 1 and "more than the limit of 1 s" in res.output


def test_encode_notes_stereo_and_resampling(tmp_path):
    x = np.stack([word_like(0.3, fs=16000), word_like(0.3, fs=16000)], axis=1)
    write_wav(tmp_path / "st.wav", x, fs=16000)
    res = CliRunner().invoke(evsim, ["encode", str(tmp_path / "st.wav"), "-o", str(tmp_path / "o.h5")])
    assert res.exit_code == 0, res.output
    assert "2 channels mixed down" in res.output and "resampled from 16000 Hz to 22050 Hz" in res.output


def test_listen_prints_the_running_prediction(class_folder):
    res = invoke("listen", class_folder / "one" / "0.wav", "--block-ms", 15, "--every-ms", 100)
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("0.11 s heard,  0.00 s decided: ")     # 7 blocks of 15 ms; the cochlea's latency
    assert len(lines) == 3 + 2
    assert lines[-2].startswith("final: ") and "ms max compute" in lines[-1]
    f32 = invoke("listen", class_folder / "one" / "0.wav", "--block-ms", 15, "--every-ms", 100, "--precision", "float32")
    assert f32.exit_code == 0, f32.output
    assert f32.output.strip().splitlines()[:-1] == lines[:-1]        # the default, auto, is float32 here
    f64 = invoke("listen", class_folder / "one" / "0.wav", "--block-ms", 15, "--every-ms", 100, "--precision", "float64")
    assert f64.exit_code == 0, f64.output
    assert f64.output.strip().splitlines()[-2].split(" (")[0] == lines[-2].split(" (")[0]    # the same final class
    bad = CliRunner().invoke(evsim, ["listen", str(class_folder / "one" / "0.wav"), "--gain", "loud"])
    assert bad.exit_code == 1 and "Error: --gain 'loud'" in bad.output
