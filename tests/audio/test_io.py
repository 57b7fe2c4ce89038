"""Reading recordings: formats, mixing down, resampling, and every kind of bad file."""

import numpy as np
import pytest
import scipy.io.wavfile

from evsim.audio.dataset import find_recordings, resolve_labels
from evsim.audio.io import AudioFileError, read_audio
from evsim.errors import InputFileError

from .conftest import FS, tone, write_wav


def test_int16_wav_is_scaled_to_unit_range(tmp_path):
    rec = read_audio(write_wav(tmp_path / "a.wav", tone(440, 0.1)))
    assert rec.sample_rate == FS and rec.source_rate == FS and rec.notes == []
    assert rec.samples.dtype == np.float64 and abs(rec.samples.max() - 0.5) < 1e-3


@pytest.mark.parametrize("dtype", [np.int32, np.float32, np.uint8])
def test_other_sample_formats(tmp_path, dtype):
    x = tone(440, 0.1)
    path = tmp_path / "a.wav"
    if dtype == np.uint8:
        scipy.io.wavfile.write(path, FS, np.round(x * 127 + 128).astype(np.uint8))
    elif dtype == np.int32:
        scipy.io.wavfile.write(path, FS, np.round(x * 2 ** 31 * 0.999).astype(np.int32))
    else:
        scipy.io.wavfile.write(path, FS, x.astype(np.float32))
    np.testing.assert_allclose(read_audio(path).samples, x, atol=0.01)


def test_stereo_is_mixed_down(tmp_path):
    x = np.stack([tone(440, 0.1), np.zeros(int(0.1 * FS))], axis=1)
    rec = read_audio(write_wav(tmp_path / "s.wav", x))
    assert rec.samples.ndim == 1 and abs(rec.samples.max() - 0.25) < 1e-3
    assert any("mixed down" in n for n in rec.notes)


def test_other_rates_are_resampled_keeping_the_pitch(tmp_path):
    rec = read_audio(write_wav(tmp_path / "r.wav", tone(1000, 0.5, fs=44100), fs=44100))
    assert rec.source_rate == 44100 and rec.sample_rate == FS
    assert rec.samples.size == int(0.5 * FS)
    spectrum = np.abs(np.fft.rfft(rec.samples))
    assert np.argmax(spectrum) * FS / rec.samples.size == pytest.approx(1000, abs=3)
    assert any("resampled from 44100" in n for n in rec.notes)


def test_clipping_and_quiet_recordings_are_noted(tmp_path):
    loud = read_audio(write_wav(tmp_path / "loud.wav", np.clip(3 * tone(440, 0.2), -1, 1)))
    assert any("clipped" in n for n in loud.notes)
    quiet = read_audio(write_wav(tmp_path / "quiet.wav", 2e-5 * tone(440, 0.2), dtype=np.float32))
    assert any("very quiet" in n for n in quiet.notes)


@pytest.mark.parametrize("content, match", [
    (b"this is not audio at all", "not a readable WAV file"),
    (b"", "not a readable WAV file"),
])
def test_non_audio_files_are_refused(tmp_path, content, match):
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(AudioFileError, match=match):
        read_audio(path)


def test_bad_recordings_are_refused(tmp_path):
    with pytest.raises(AudioFileError, match="not found"):
        read_audio(tmp_path / "missing.wav")
    with pytest.raises(AudioFileError, match="silent"):
        read_audio(write_wav(tmp_path / "zero.wav", np.zeros(1000)))
    with pytest.raises(AudioFileError, match="no samples"):
        read_audio(write_wav(tmp_path / "empty.wav", np.zeros(0)))
    nan = tone(440, 0.1).astype(np.float32)
    nan[10] = np.nan
    with pytest.raises(AudioFileError, match="NaN"):
        read_audio(write_wav(tmp_path / "nan.wav", nan, dtype=np.float32))
    with pytest.raises(AudioFileError, match=r"2\.0 s long, more than the limit of 1 s"):
        read_audio(write_wav(tmp_path / "long.wav", tone(440, 2.0)), max_seconds=1)


def test_flac_needs_soundfile(tmp_path):
    try:
        import soundfile
    except ImportError:
        (tmp_path / "a.flac").write_bytes(b"fLaC")
        with pytest.raises(AudioFileError, match="optional 'soundfile' package"):
            read_audio(tmp_path / "a.flac")
        return
    soundfile.write(tmp_path / "a.flac", tone(440, 0.1), FS)
    np.testing.assert_allclose(read_audio(tmp_path / "a.flac").samples, tone(440, 0.1), atol=1e-3)


def test_folders_labels_csv_and_class_folders(tmp_path):
    for word in ("yes", "no"):
        (tmp_path / "cls" / word).mkdir(parents=True)
        write_wav(tmp_path / "cls" / word / "a.wav", tone(440, 0.1))
    write_wav(tmp_path / "cls" / "loose.wav", tone(440, 0.1))
    items = find_recordings([tmp_path / "cls"])
    assert [it.label for it in items] == [None, "no", "yes"]       # sorted, loose file first
    labels, names = resolve_labels(items[1:])
    assert names == ("no", "yes") and labels.tolist() == [0, 1]
    labels, names = resolve_labels(items[1:], class_names=["Yes", "No"])
    assert labels.tolist() == [1, 0]
    with pytest.raises(InputFileError, match="'no' is not a class name; classes: a, b"):
        resolve_labels(items[1:], class_names=["a", "b"])

    (tmp_path / "csv").mkdir()
    write_wav(tmp_path / "csv" / "x.wav", tone(440, 0.1))
    (tmp_path / "csv" / "labels.csv").write_text("file,label,word,speaker\nx.wav,1,one,7\nx.wav,0,zero,8\n")
    items = find_recordings([tmp_path / "csv"])
    assert [(it.label, it.word, it.speaker) for it in items] == [(1, "one", "7"), (0, "zero", "8")]
    assert resolve_labels(items) [1] == ("zero", "one")


def test_bad_inputs_to_find_recordings(tmp_path):
    with pytest.raises(InputFileError, match="not found"):
        find_recordings([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no audio files"):
        find_recordings([tmp_path / "empty"])
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(AudioFileError, match="not an audio file"):
        find_recordings([tmp_path / "notes.txt"])
    (tmp_path / "labels.csv").write_text("name,class\na.wav,1\n")
    with pytest.raises(InputFileError, match="missing column"):
        find_recordings([tmp_path / "labels.csv"])
