"""evsim.datasets: registry, offline failure, checksums, atomic install, check_dir.

No test touches the network: downloads are served from ``file://`` URLs in tmp_path, and
the offline case replaces ``urllib.request.urlopen`` with one that raises.
"""

import gzip
import hashlib
import os
import socket
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from evsim import datasets
from evsim.data import SpikeFile, write_spike_file
from evsim.errors import EvsimError


def _make_gz(src_dir, stem, n=3, seed=0):
    """Write ``stem.h5`` (small SHD-layout file) and ``stem.h5.gz``; return (gz path, md5)."""
    rng = np.random.default_rng(seed)
    samples = [(np.sort(rng.uniform(0, 0.5, 20)), rng.integers(0, 700, 20)) for _ in range(n)]
    h5 = os.path.join(src_dir, f"{stem}.h5")
    write_spike_file(h5, samples, labels=list(range(n)), class_names=[f"c{i}" for i in range(n)])
    gz = h5 + ".gz"
    with open(h5, "rb") as fi, gzip.open(gz, "wb") as fo:
        fo.write(fi.read())
    os.remove(h5)
    return gz, hashlib.md5(open(gz, "rb").read()).hexdigest()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A fake 'shd' release of two small files under a file:// base URL, with true md5s."""
    src = tmp_path / "server"
    src.mkdir()
    entries = []
    for i, split in enumerate(("train", "test")):
        _, md5 = _make_gz(str(src), f"shd_{split}", seed=i)
        entries.append(datasets.RemoteFile(f"shd_{split}.h5.gz", split, md5, "test"))
    monkeypatch.setitem(datasets.FILES, "shd", tuple(entries))
    return src.as_uri() + "/", tmp_path / "dest"


def test_registry_names():
    assert datasets.expected_files("shd") == ["shd_train.h5", "shd_test.h5"]
    assert datasets.expected_files("SSC") == ["ssc_train.h5", "ssc_valid.h5", "ssc_test.h5"]
    for files in datasets.FILES.values():
        for f in files:
            assert f.md5 is None or (len(f.md5) == 32 and int(f.md5, 16) >= 0)
    with pytest.raises(EvsimError, match="unknown data set 'mnist'.*shd, ssc"):
        datasets.expected_files("mnist")


@pytest.mark.parametrize("exc", [
    urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution")),
    urllib.error.URLError(ConnectionRefusedError(111, "Connection refused")),
    socket.timeout("timed out"),
])
def test_offline_fails_at_once_with_instructions(tmp_path, monkeypatch, exc):
    calls = []

    def offline(url, timeout=None):
        calls.append((url, timeout))
        raise exc

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    dest = tmp_path / "data"
    t0 = time.perf_counter()
    with pytest.raises(EvsimError) as info:
        datasets.download("shd", dest)
    assert time.perf_counter() - t0 < 1.0
    assert len(calls) == 1 and calls[0][1] == datasets.TIMEOUT_S    # no retries, the first file only
    msg = str(info.value)
    assert msg.startswith("download of https://zenkelab.org/datasets/shd_train.h5.gz failed")
    assert "offline" in msg
    for name in ("shd_train.h5.gz", "shd_test.h5.gz", "shd_train.h5", "shd_test.h5"):
        assert name in msg
    assert "https://zenkelab.org/datasets/shd_test.h5.gz" in msg
    assert str(dest) in msg
    assert not dest.exists()                     # nothing half-written; the new directory removed


def test_http_error_names_code(served, monkeypatch):
    base, dest = served

    def not_found(url, timeout=None):
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.setattr(urllib.request, "urlopen", not_found)
    dest.mkdir()                                 # an existing directory stays, empty
    with pytest.raises(EvsimError, match="HTTP 404 Not Found"):
        datasets.download("shd", dest, base_url=base)
    assert os.listdir(dest) == []


def test_download_verifies_and_gunzips(served):
    base, dest = served
    seen = []
    paths = datasets.download("shd", dest, progress=lambda *a: seen.append(a), base_url=base)
    assert paths == [str(dest / "shd_train.h5"), str(dest / "shd_test.h5")]
    assert sorted(os.listdir(dest)) == ["shd_test.h5", "shd_train.h5"]   # no .gz, no temporaries
    with SpikeFile(paths[0]) as f:
        assert len(f) == 3 and f.class_names == ("c0", "c1", "c2")
    assert {a[0] for a in seen} == {"shd_train.h5.gz", "shd_test.h5.gz"}
    assert datasets.check_dir("shd", dest) == {"train": paths[0], "test": paths[1]}
    umask = os.umask(0)
    os.umask(umask)
    for p in paths:   # ordinary permissions, not mkstemp's private 0600
        assert os.stat(p).st_mode & 0o777 == 0o666 & ~umask


def test_present_files_are_not_fetched_again(served, monkeypatch):
    base, dest = served
    datasets.download("shd", dest, base_url=base)

    def boom(url, timeout=None):
        raise AssertionError("network used")

    monkeypatch.setattr(urllib.request, "urlopen", boom)
    assert len(datasets.download("shd", dest, base_url=base)) == 2


def test_keep_gz_and_hand_placed_gz(served, monkeypatch):
    base, dest = served
    datasets.download("shd", dest, base_url=base, keep_gz=True)
    assert sorted(os.listdir(dest)) == ["shd_test.h5", "shd_test.h5.gz", "shd_train.h5", "shd_train.h5.gz"]
    os.remove(dest / "shd_train.h5")
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: (_ for _ in ()).throw(AssertionError("net")))
    datasets.download("shd", dest, base_url=base)                     # gunzips the .gz put there
    assert (dest / "shd_train.h5").exists()


def test_checksum_mismatch_raises_and_leaves_nothing(served, monkeypatch):
    base, dest = served
    bad = datasets.FILES["shd"][0]._replace(md5="0" * 32)
    monkeypatch.setitem(datasets.FILES, "shd", (bad, datasets.FILES["shd"][1]))
    with pytest.raises(EvsimError, match=r"checksum mismatch for shd_train\.h5\.gz: md5 [0-9a-f]{32} "
                                          r"\(sha256 [0-9a-f]{64}\) but the published md5 is 0{32}"):
        datasets.download("shd", dest, base_url=base)
    assert not dest.exists()


def test_corrupt_hand_placed_gz_is_reported_not_deleted(served):
    base, dest = served
    dest.mkdir()
    (dest / "shd_train.h5.gz").write_bytes(b"not the data")
    with pytest.raises(EvsimError, match="checksum mismatch"):
        datasets.download("shd", dest, base_url=base)
    assert os.listdir(dest) == ["shd_train.h5.gz"]


def test_truncated_transfer_leaves_nothing(served, monkeypatch):
    base, dest = served
    real = urllib.request.urlopen

    class Cut:
        def __init__(self, resp):
            self.resp, self.headers, self.n = resp, {"Content-Length": "999999"}, 0

        def read(self, k):
            self.n += 1
            if self.n > 1:
                raise socket.timeout("timed out")
            return self.resp.read(100)

        def __enter__(self):
            return self

        def __exit__(self, *a):
            self.resp.close()

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Cut(real(url, timeout=timeout)))
    dest.mkdir()
    with pytest.raises(EvsimError, match="download of .*shd_train.h5.gz failed"):
        datasets.download("shd", dest, base_url=base)
    assert os.listdir(dest) == []


def test_unverified_download_warns_with_hashes(served, monkeypatch):
    base, dest = served
    f0, f1 = datasets.FILES["shd"]
    monkeypatch.setitem(datasets.FILES, "shd", (f0._replace(md5=None), f1))
    gz = open(os.path.join(base[len("file://"):], "shd_train.h5.gz"), "rb").read()
    with pytest.warns(datasets.UnverifiedDownloadWarning, match="UNVERIFIED") as rec:
        datasets.download("shd", dest, base_url=base)
    text = str(rec[0].message)
    assert hashlib.md5(gz).hexdigest() in text and hashlib.sha256(gz).hexdigest() in text
    assert (dest / "shd_train.h5").exists()


def test_missing_md5_taken_from_site_md5sums(served, monkeypatch):
    base, dest = served
    f0, f1 = datasets.FILES["shd"]
    monkeypatch.setitem(datasets.FILES, "shd", (f0._replace(md5=None), f1))
    server = base[len("file://"):]
    with open(os.path.join(server, "md5sums.txt"), "w") as fh:
        fh.write(f"{'1' * 32}  shd_train.h5.gz\n")                       # the site says otherwise
    with pytest.raises(EvsimError, match=r"published md5 is 1{32} \(md5sums.txt at file://"):
        datasets.download("shd", dest, base_url=base)
    assert not dest.exists()


def test_check_dir_messages(tmp_path):
    with pytest.raises(EvsimError, match="does not exist; it must hold shd_train.h5, shd_test.h5"):
        datasets.check_dir("shd", tmp_path / "nope")
    d = tmp_path / "d"
    d.mkdir()
    write_spike_file(d / "ssc_train.h5", [([0.1], [3])], labels=[0])
    (d / "ssc_valid.h5.gz").write_bytes(b"x")
    (d / "ssc_test.h5").write_bytes(b"garbage")
    with pytest.raises(EvsimError) as info:
        datasets.check_dir("ssc", d)
    msg = str(info.value)
    assert "ssc_valid.h5 is missing (ssc_valid.h5.gz is there but not gunzipped" in msg
    assert "ssc_test.h5 is not an SHD-layout HDF5 file" in msg
    assert "ssc_train.h5" not in msg.split("To install")[0].replace("ssc_train.h5.gz", "")
    assert "https://zenkelab.org/datasets/ssc_valid.h5.gz" in msg
    with pytest.raises(EvsimError, match=r"shd_train.h5 is missing; shd_test.h5 is missing"):
        datasets.check_dir("shd", d)


def test_missing_file_on_mirror(served):
    base, dest = served
    os.remove(os.path.join(base[len("file://"):], "shd_test.h5.gz"))
    with pytest.raises(EvsimError, match=r"download of file://.*shd_test.h5.gz failed: no such file"):
        datasets.download("shd", dest, base_url=base)
    assert sorted(os.listdir(dest)) == ["shd_train.h5"]                # the complete file stays


def test_offline_while_looking_up_a_missing_checksum(tmp_path, monkeypatch):
    calls = []

    def offline(url, timeout=None):
        calls.append(url)
        raise urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(EvsimError, match=r"(?s)md5sums.txt failed .*offline.*ssc_train.h5.gz"):
        datasets.download("ssc", tmp_path / "ssc")                     # ssc_train has no recorded md5
    assert len(calls) == 1


def test_offline_with_hand_placed_unverified_gz_installs_it(tmp_path, monkeypatch):
    dest = tmp_path / "ssc"
    dest.mkdir()
    for split in ("train", "valid", "test"):
        gz, md5 = _make_gz(str(dest), f"ssc_{split}")
    f_train, f_valid, f_test = datasets.FILES["ssc"]
    monkeypatch.setitem(datasets.FILES, "ssc", (f_train._replace(md5=None), f_valid._replace(md5=None),
                                                f_test._replace(md5=md5)))
    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: (_ for _ in ()).throw(
        urllib.error.URLError(socket.gaierror(-2, "Name or service not known"))))
    with pytest.warns(datasets.UnverifiedDownloadWarning):
        paths = datasets.download("ssc", dest)
    assert [os.path.basename(p) for p in paths] == ["ssc_train.h5", "ssc_valid.h5", "ssc_test.h5"]
    assert set(datasets.check_dir("ssc", dest)) == {"train", "valid", "test"}
