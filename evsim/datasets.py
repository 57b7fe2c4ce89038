"""The official Heidelberg spiking data sets (SHD, SSC): where they live, how to fetch them.

The Zenke lab publishes both data sets as gzipped HDF5 files at :data:`BASE_URL`::

    shd_train.h5.gz  shd_test.h5.gz                       -> shd_train.h5  shd_test.h5
    ssc_train.h5.gz  ssc_valid.h5.gz  ssc_test.h5.gz      -> ssc_train.h5  ssc_valid.h5  ssc_test.h5

:func:`download` fetches the ``.gz`` files, checks each against the MD5 recorded in
:data:`FILES` and gunzips it next to itself.  Every file is first written under a temporary
name in the destination directory and renamed into place (``os.replace``) only once it is
complete and verified, so an interrupted or failed download never leaves a file that looks
finished.  Offline, the first connection error ends the call at once with an
:class:`~evsim.errors.EvsimError` that lists the URLs to fetch on a connected machine and
the exact file names to put in the directory by hand.

Checksums.  Each :class:`RemoteFile` records the MD5 of its ``.gz`` file and where that
value was found.  A file whose MD5 is not recorded is looked up in the ``md5sums.txt``
the site publishes next to the data; if that fails too, the download is *unverified*: it
goes ahead, and an :class:`UnverifiedDownloadWarning` gives the MD5 and SHA-256 that were
computed so they can be compared by hand (and recorded here).  A checksum is never
skipped silently.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import shutil
import socket
import tempfile
import urllib.error
import urllib.request
import warnings
from typing import Callable, NamedTuple

from ._io import publish
from .errors import EvsimError

__all__ = [
    "BASE_URL",
    "FILES",
    "RemoteFile",
    "UnverifiedDownloadWarning",
    "check_dir",
    "download",
    "expected_files",
]

BASE_URL = "https://zenkelab.org/datasets/"
TIMEOUT_S = 15.0
_CHUNK = 1 << 20


class RemoteFile(NamedTuple):
    """One published file.

    gz_name: name of the gzipped file on the server, e.g. ``shd_train.h5.gz``
    split: ``train``, ``valid`` or ``test``
    md5: MD5 (hex) of the ``.gz`` file, or None when no published value was found
    md5_source: where the MD5 was found (kept so a reader can judge it)
    """

    gz_name: str
    split: str
    md5: str | None
    md5_source: str

    @property
    def h5_name(self) -> str:
        """Name of the gunzipped file, e.g. ``shd_train.h5``."""
        return self.gz_name[: -len(".gz")]


_SHD_SOURCE = ("the same pair of values recorded by three independent public SHD loaders "
               "(torchvision-style dataset classes fetching from compneuro.net, the site's former name)")
_SSC_VALID_SOURCE = "one public project README that records the compressed MD5 of ssc_valid.h5.gz"

# name -> files, in the order they are fetched.  Tests replace entries with monkeypatch.
FILES: dict[str, tuple[RemoteFile, ...]] = {
    "shd": (
        RemoteFile("shd_train.h5.gz", "train", "d47c9825dee33347913e8ce0f2be08b0", _SHD_SOURCE),
        RemoteFile("shd_test.h5.gz", "test", "3062a80ec0c5719404d5b02e166543b1", _SHD_SOURCE),
    ),
    "ssc": (
        RemoteFile("ssc_train.h5.gz", "train", None, "no published value found"),
        RemoteFile("ssc_valid.h5.gz", "valid", "555645b13e15fe270fbfe39cb763f805", _SSC_VALID_SOURCE),
        RemoteFile("ssc_test.h5.gz", "test", None, "no published value found"),
    ),
}


class UnverifiedDownloadWarning(UserWarning):
    """A file was downloaded but no published checksum was available to verify it."""


# -- small helpers ----------------------------------------------------------------------
def _files(name: str) -> tuple[RemoteFile, ...]:
    key = str(name).lower()
    if key not in FILES:
        raise EvsimError(f"unknown data set {name!r}; expected one of {', '.join(sorted(FILES))}")
    return FILES[key]


def expected_files(name: str) -> list[str]:
    """The file names :func:`download` leaves in its directory, e.g. ``['shd_train.h5', 'shd_test.h5']``."""
    return [f.h5_name for f in _files(name)]


def _join_url(base_url: str, file_name: str) -> str:
    return base_url.rstrip("/") + "/" + file_name


def _by_hand(files: tuple[RemoteFile, ...], dest_dir: str, base_url: str) -> str:
    urls = "\n".join(f"  {_join_url(base_url, f.gz_name)}" for f in files)
    gz = ", ".join(f.gz_name for f in files)
    h5 = ", ".join(f.h5_name for f in files)
    return (f"To install the files by hand, fetch on a connected machine:\n{urls}\n"
            f"and copy them into {dest_dir} either as they are ({gz}; evsim checks and gunzips them "
            f"on the next run) or gunzipped ({h5}).")


def _looks_like_spike_file(path: str) -> bool:
    """Cheap check that ``path`` is a complete SHD-layout HDF5 file (no hashing)."""
    import h5py

    try:
        if not h5py.is_hdf5(path):
            return False
        with h5py.File(path, "r") as h5:
            return "spikes/times" in h5 and "spikes/units" in h5 and "labels" in h5
    except (OSError, ValueError):
        return False


def _hash_file(path: str) -> tuple[str, str]:
    md5, sha = hashlib.md5(), hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            md5.update(block)
            sha.update(block)
    return md5.hexdigest(), sha.hexdigest()


def _remove(path: str | None) -> None:
    if path is not None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def _temp_path(dest_dir: str, final_name: str) -> str:
    fd, path = tempfile.mkstemp(dir=dest_dir, prefix=f".{final_name}.", suffix=".part")
    os.close(fd)
    return path


class _Offline(Exception):
    """Internal: a network failure, turned into the one user-facing message by download()."""


def _open(url: str, timeout: float):
    """urlopen with the network failures folded into _Offline (HTTP errors excepted)."""
    try:
        return urllib.request.urlopen(url, timeout=timeout)
    except urllib.error.HTTPError:
        raise
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, FileNotFoundError):            # file:// mirror without the file
            raise FileNotFoundError(f"{url} does not exist") from exc
        raise _Offline(str(exc.reason)) from exc
    except (socket.timeout, TimeoutError, ConnectionError) as exc:
        raise _Offline(f"{type(exc).__name__}: {exc}") from exc


def _fetch_md5sums(base_url: str, timeout: float) -> dict[str, str]:
    """The site's ``md5sums.txt`` as {file name: md5}; empty when it cannot be read."""
    try:
        with _open(_join_url(base_url, "md5sums.txt"), timeout) as resp:
            text = resp.read(1 << 16).decode("utf-8", "replace")
    except _Offline:
        raise                                                    # offline: stop at once
    except (urllib.error.HTTPError, OSError, ValueError):
        return {}
    sums = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and len(parts[0]) == 32:
            sums[parts[1].lstrip("*")] = parts[0].lower()
    return sums


def _stream_to(resp, path: str, file_name: str, progress) -> tuple[str, str]:
    """Copy a response body into ``path`` and return its (md5, sha256)."""
    total = resp.headers.get("Content-Length") if getattr(resp, "headers", None) else None
    total = int(total) if total and str(total).isdigit() else None
    md5, sha = hashlib.md5(), hashlib.sha256()
    done = 0
    with open(path, "wb") as out:
        while True:
            block = resp.read(_CHUNK)
            if not block:
                break
            out.write(block)
            md5.update(block)
            sha.update(block)
            done += len(block)
            if progress is not None:
                progress(file_name, done, total)
    if total is not None and done != total:
        raise _Offline(f"connection closed after {done} of {total} bytes")
    return md5.hexdigest(), sha.hexdigest()


def _verify(f: RemoteFile, md5: str, sha: str, expected: str | None, source: str, where: str) -> None:
    if expected is None:
        warnings.warn(
            f"{f.gz_name}: no published checksum known, so the download is UNVERIFIED. "
            f"Computed md5 {md5}, sha256 {sha}; compare them with the md5sums.txt of {BASE_URL} "
            f"and record the md5 in evsim.datasets.FILES.",
            UnverifiedDownloadWarning, stacklevel=3)
        return
    if md5 != expected.lower():
        raise EvsimError(
            f"{where}: checksum mismatch for {f.gz_name}: md5 {md5} (sha256 {sha}) but the published "
            f"md5 is {expected} ({source}). The file is corrupt or not the official release; "
            f"nothing was installed.")


def _gunzip(gz_path: str, final_path: str, dest_dir: str) -> None:
    tmp = _temp_path(dest_dir, os.path.basename(final_path))
    try:
        with gzip.open(gz_path, "rb") as src, open(tmp, "wb") as out:
            shutil.copyfileobj(src, out, _CHUNK)
        if not _looks_like_spike_file(tmp):
            raise EvsimError(f"{gz_path} does not contain an SHD-layout HDF5 file (spikes/times, spikes/units, labels)")
        publish(tmp, final_path)
        tmp = None
    except (OSError, EOFError) as exc:
        raise EvsimError(f"cannot gunzip {gz_path}: {exc}") from exc
    finally:
        _remove(tmp)


# -- public API -------------------------------------------------------------------------
def download(name: str, dest_dir: str | os.PathLike,
             progress: Callable[[str, int, int | None], None] | None = None, *,
             base_url: str = BASE_URL, timeout: float = TIMEOUT_S, keep_gz: bool = False) -> list[str]:
    """Fetch, verify and gunzip data set ``name`` ("shd" or "ssc") into ``dest_dir``.

    Returns the paths of the ``.h5`` files, in the order of :func:`expected_files`.

    For each file, in order: an ``.h5`` already in ``dest_dir`` that opens as an SHD-layout
    file is kept as it is; else a ``.h5.gz`` already there (put by hand) is verified and
    gunzipped; else the ``.gz`` is downloaded to a temporary file in ``dest_dir``, verified,
    gunzipped to a second temporary file and renamed into place.  The downloaded ``.gz`` is
    deleted unless ``keep_gz``.

    progress: called as ``progress(gz_name, bytes_done, bytes_total_or_None)`` while a file
        downloads.
    base_url: where the files are (a mirror, or a ``file://`` URL).
    timeout: seconds to wait for a connection or a block of data.

    Raises :class:`~evsim.errors.EvsimError` at the first failure: offline (the message
    says which files to put where by hand), HTTP error, checksum mismatch, bad gzip.
    Warns with :class:`UnverifiedDownloadWarning` for a file with no known checksum.
    """
    files = _files(name)
    dest_dir = os.fspath(dest_dir)
    created = not os.path.isdir(dest_dir)
    try:
        os.makedirs(dest_dir, exist_ok=True)
    except OSError as exc:
        raise EvsimError(f"cannot create the data directory {dest_dir}: {exc}") from exc
    try:
        return _download_into(files, dest_dir, progress, base_url, timeout, keep_gz)
    except BaseException:
        if created and not os.listdir(dest_dir):                # leave no trace of a failed first try
            os.rmdir(dest_dir)
        raise


def _download_into(files, dest_dir, progress, base_url, timeout, keep_gz) -> list[str]:
    site_sums: dict[str, str] | None = None
    paths = []
    for f in files:
        final = os.path.join(dest_dir, f.h5_name)
        paths.append(final)
        if os.path.exists(final) and _looks_like_spike_file(final):
            continue
        gz_here = os.path.join(dest_dir, f.gz_name)
        by_hand = os.path.exists(gz_here)
        expected, source = f.md5, f.md5_source
        if expected is None:
            if site_sums is None:
                try:
                    site_sums = _fetch_md5sums(base_url, timeout)
                except _Offline as exc:
                    if not by_hand:
                        raise EvsimError(f"download of {_join_url(base_url, 'md5sums.txt')} failed ({exc}); this "
                                         f"machine may be offline. " + _by_hand(files, dest_dir, base_url)) from exc
                    site_sums = {}                               # offline with the file at hand: unverified
            if f.gz_name in site_sums:
                expected, source = site_sums[f.gz_name], f"md5sums.txt at {base_url}"
        if by_hand:
            md5, sha = _hash_file(gz_here)
            _verify(f, md5, sha, expected, source, where=gz_here)
            _gunzip(gz_here, final, dest_dir)
            continue
        url = _join_url(base_url, f.gz_name)
        tmp = _temp_path(dest_dir, f.gz_name)
        try:
            try:
                with _open(url, timeout) as resp:
                    md5, sha = _stream_to(resp, tmp, f.gz_name, progress)
            except urllib.error.HTTPError as exc:
                raise EvsimError(f"download of {url} failed: HTTP {exc.code} {exc.reason}. "
                                 + _by_hand(files, dest_dir, base_url)) from exc
            except FileNotFoundError as exc:
                raise EvsimError(f"download of {url} failed: no such file. "
                                 + _by_hand(files, dest_dir, base_url)) from exc
            except (_Offline, socket.timeout, TimeoutError, ConnectionError) as exc:
                raise EvsimError(f"download of {url} failed ({exc}); this machine may be offline. "
                                 + _by_hand(files, dest_dir, base_url)) from exc
            except (OSError, http.client.HTTPException) as exc:      # SSL, disk full, broken reply
                raise EvsimError(f"download of {url} failed ({type(exc).__name__}: {exc}). "
                                 + _by_hand(files, dest_dir, base_url)) from exc
            _verify(f, md5, sha, expected, source, where=url)
            if keep_gz:
                publish(tmp, gz_here)
                tmp = None
                _gunzip(gz_here, final, dest_dir)
            else:
                _gunzip(tmp, final, dest_dir)
        finally:
            _remove(tmp)
    return paths


def check_dir(name: str, data_dir: str | os.PathLike) -> dict[str, str]:
    """Check that ``data_dir`` holds the ``.h5`` files of data set ``name``.

    Returns {split: path}, e.g. ``{"train": ".../shd_train.h5", "test": ".../shd_test.h5"}``.
    Raises :class:`~evsim.errors.EvsimError` naming every missing or unreadable file and
    saying how to get it.
    """
    files = _files(name)
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        raise EvsimError(f"data directory {data_dir} does not exist; it must hold "
                         f"{', '.join(f.h5_name for f in files)}. " + _by_hand(files, data_dir, BASE_URL))
    problems, found = [], {}
    for f in files:
        path = os.path.join(data_dir, f.h5_name)
        if os.path.exists(path):
            if _looks_like_spike_file(path):
                found[f.split] = path
            else:
                problems.append(f"{f.h5_name} is not an SHD-layout HDF5 file (spikes/times, spikes/units, labels)")
        elif os.path.exists(os.path.join(data_dir, f.gz_name)):
            problems.append(f"{f.h5_name} is missing ({f.gz_name} is there but not gunzipped: "
                            f"run the download again or `gunzip {f.gz_name}`)")
        else:
            problems.append(f"{f.h5_name} is missing")
    if problems:
        raise EvsimError(f"{data_dir} is not a complete {name.upper()} directory: " + "; ".join(problems)
                         + ". " + _by_hand(files, data_dir, BASE_URL))
    return found
