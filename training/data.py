"""A whole SHD-layout file held in memory for training, its speaker split and its batches.

Binning (the SHD recipe): every sample is binned by :func:`evsim.data.bin_validated` (the body of
:func:`evsim.data.bin_spikes`, on the events :meth:`SpikeFile.read` already checked),
so training sees exactly what ``evsim run`` sees::

    step(t)    = floor(t * 1000 / dt_ms)              evsim.data.time_to_step; dt_ms = 10 by default
    input(u)   = u // pool                            700 channels -> 140 inputs for pool 5
    x[step, input] += 1                               counts summed, not clipped
    n_steps    = max over the training file of (last step + 1)    (evsim.data.n_steps_for)

A sample longer than :data:`evsim.data.MAX_STEPS` steps raises
:class:`~evsim.errors.InputFileError` when ``n_steps`` is computed from the file.

Every sample is presented with exactly ``n_steps`` steps: shorter samples are padded with
zeros at the end, and when ``n_steps`` is given (the test file binned with the training
file's ``n_steps``) later spikes are dropped and counted in ``n_dropped``.  ``n_steps`` is
what a trained model records as ``metadata.n_steps``.

Storage.  A dense (N, n_steps, n_inputs) array would take ~300 MB for digits_train.h5, so
each sample is kept as its non-empty bins: ``keys = step * n_inputs + input`` (int32) with
their ``counts`` (uint16), concatenated over samples with ``offsets`` (CSR layout).  This
is the binned data, not the raw spike times: augmentations act on binned counts (see
:mod:`evsim.training.augment`).  A batch is made dense with one ``np.bincount`` over flat
indices.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from evsim.data import bin_validated
from evsim.inputs import open_input
from evsim.errors import EvsimError
from evsim.model import pooled_inputs

from .augment import Augment, blend, shift_channels, voice_transform

__all__ = ["SpikeDataset", "Split", "load_dataset", "split_by_speaker", "split_speaker_fold", "speaker_folds",
           "too_few_speakers", "iterate_batches", "n_batches", "FOLD_SEED"]


@dataclass(frozen=True, eq=False)
class SpikeDataset:
    """Binned samples of one file, in compact form (see the module docstring).

    keys: (nnz,) int32, ``step * n_inputs + input`` of each non-empty bin, grouped by sample
    counts: (nnz,) uint16 (uint32 if needed), spikes in that bin
    offsets: (N + 1,) int64, sample i owns ``keys[offsets[i]:offsets[i + 1]]``
    labels: (N,) int64 in [0, n_classes)
    speakers: (N,) int64 speaker ids, or None when the file has none
    class_names: n_classes names (from extra/keys, else "0", "1", ...)
    n_steps: steps every sample is padded (or cut) to
    dt_ms, pool, input_channels: the binning; the model sees ceil(input_channels / pool) inputs
    n_dropped: spikes at or after n_steps that were dropped
    path: the file the data came from
    """

    keys: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray
    labels: np.ndarray
    speakers: np.ndarray | None
    class_names: tuple[str, ...]
    n_steps: int
    dt_ms: float
    pool: int
    input_channels: int
    n_dropped: int = 0
    path: str = ""

    def __len__(self) -> int:
        return self.labels.shape[0]

    @property
    def n_inputs(self) -> int:
        return pooled_inputs(self.input_channels, self.pool)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def n_spikes(self) -> np.ndarray:
        """(N,) spikes kept per sample."""
        owner = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        return np.bincount(owner, weights=self.counts, minlength=len(self)).astype(np.int64)

    def metadata(self) -> dict:
        """The keyword arguments of :class:`evsim.model.ModelMetadata` this data implies."""
        return {"dt_ms": float(self.dt_ms), "input_channels": int(self.input_channels), "pool": int(self.pool),
                "n_steps": int(self.n_steps), "class_names": tuple(self.class_names)}

    def dense(self, indices, dtype=np.float32) -> np.ndarray:
        """Samples ``indices`` as a dense (B, n_steps, n_inputs) array of counts."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise EvsimError(f"sample indices must be in [0, {len(self)}), got {idx.min()}..{idx.max()}")
        B, T, C = idx.size, self.n_steps, self.n_inputs
        starts = self.offsets[idx]
        lengths = self.offsets[idx + 1] - starts
        total = int(lengths.sum())
        # positions of every stored bin of the batch in keys/counts, sample after sample
        row_start = np.cumsum(lengths) - lengths
        pos = np.repeat(starts - row_start, lengths) + np.arange(total)
        flat = self.keys[pos].astype(np.int64) + np.repeat(np.arange(B, dtype=np.int64) * (T * C), lengths)
        out = np.bincount(flat, weights=self.counts[pos], minlength=B * T * C)
        return out.reshape(B, T, C).astype(dtype, copy=False)

    def class_members(self, indices) -> dict[int, np.ndarray]:
        """{label: members of ``indices`` with that label}."""
        idx = np.asarray(indices, dtype=np.int64)
        lab = self.labels[idx]
        return {int(c): idx[lab == c] for c in np.unique(lab)}


def load_dataset(path: str | os.PathLike, *, dt_ms: float = 10.0, pool: int = 5, n_steps: int | None = None,
                 input_channels: int = 700, n_classes: int | None = None, indices=None) -> SpikeDataset:
    """Read and bin every sample of an SHD-layout file (or only the samples ``indices``,
    in that order: ``--limit``).

    n_steps: None for the training file (n_steps = max over the file); the training
        file's value for the validation/test file (later spikes dropped, counted).
    n_classes: number of classes of the model; labels must lie in [0, n_classes).
        Default: the number of names in extra/keys, else max label + 1.
    Raises :class:`~evsim.errors.EvsimError` for a bad file, missing or out-of-range labels.
    """
    if not (np.isfinite(dt_ms) and dt_ms > 0):
        raise EvsimError(f"dt_ms: {dt_ms!r}; expected a positive number of milliseconds")
    if not (isinstance(pool, (int, np.integer)) and pool >= 1):
        raise EvsimError(f"pool: {pool!r}; expected a positive integer")
    if n_steps is not None and not (isinstance(n_steps, (int, np.integer)) and n_steps >= 1):
        raise EvsimError(f"n_steps: {n_steps!r}; expected a positive integer or None")
    if n_classes is not None and not (isinstance(n_classes, (int, np.integer)) and n_classes >= 1):
        raise EvsimError(f"n_classes: {n_classes!r}; expected a positive integer or None")
    n_in = pooled_inputs(input_channels, pool)
    if n_steps is not None:
        _check_int32(int(n_steps), n_in)
    with open_input(path, n_channels=input_channels) as f:
        labels = f.labels
        if labels is None:
            raise EvsimError(f"{f.path}: no 'labels' dataset; training needs a label for every sample")
        names = f.class_names
        speakers = f.speakers
        rows = np.arange(len(f)) if indices is None else np.asarray(indices, np.int64)
        labels = labels[rows]
        speakers = speakers[rows] if speakers is not None else None
        n = len(rows)
        keys_per, counts_per, lengths_t = [], [], np.ones(n, np.int64)
        dropped = 0
        for k, i in enumerate(rows.tolist()):
            s = f.read(i)                                       # validated float64 times, int64 units
            x = bin_validated(s.times, s.units, dt_ms=dt_ms, n_channels=input_channels, pool=pool,
                           n_steps=n_steps, dtype=np.int64, where=f"{f.path} sample {i}").reshape(-1)
            nz = np.flatnonzero(x)                              # ascending keys step * n_in + input
            keys_per.append(nz)
            counts_per.append(x[nz])
            lengths_t[k] = x.size // n_in
            dropped += s.times.size - int(x[nz].sum())          # spikes at or after n_steps
    if n_classes is None:
        n_classes = len(names) if names else (int(labels.max()) + 1 if n else 0)
    if n and labels.max() >= n_classes:
        bad = np.flatnonzero(labels >= n_classes)
        raise EvsimError(f"{path}: label {labels[bad[0]]} of sample {bad[0]} (and {bad.size - 1} more) is outside "
                         f"[0, {n_classes}); the model has {n_classes} classes")
    if names and len(names) != n_classes:
        names = tuple(names[:n_classes]) + tuple(str(c) for c in range(len(names), n_classes))
    if not names:
        names = tuple(str(c) for c in range(n_classes))
    T = int(lengths_t.max()) if n_steps is None and n else int(n_steps or 1)
    _check_int32(T, n_in)
    lengths = np.array([k.size for k in keys_per], np.int64)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    keys = np.concatenate(keys_per).astype(np.int32) if n else np.zeros(0, np.int32)
    counts = np.concatenate(counts_per) if n else np.zeros(0, np.int64)
    cdt = np.uint16 if (counts.size == 0 or counts.max() < 2**16) else np.uint32
    return SpikeDataset(keys=keys, counts=counts.astype(cdt), offsets=offsets, labels=labels,
                        speakers=speakers, class_names=tuple(names), n_steps=T, dt_ms=float(dt_ms),
                        pool=int(pool), input_channels=int(input_channels), n_dropped=dropped,
                        path=os.fspath(path))


def _check_int32(n_steps: int, n_in: int) -> None:
    if n_steps * n_in >= 2**31:
        raise EvsimError(f"n_steps {n_steps} x {n_in} inputs is too large to index with int32")


class Split(tuple):
    """``(train, val)`` index arrays, unpackable as a pair, with two more attributes.

    by_speaker: True when the split is by speaker (no speaker on both sides)
    warning: None, or why the split is not by speaker
    val_speakers: the speaker ids held out (empty when not by speaker)
    """

    def __new__(cls, train, val, by_speaker: bool, warning: str | None, val_speakers=()):
        obj = super().__new__(cls, (train, val))
        obj.by_speaker = by_speaker
        obj.warning = warning
        obj.val_speakers = np.asarray(val_speakers, dtype=np.int64)
        return obj

    @property
    def train(self) -> np.ndarray:
        return self[0]

    @property
    def val(self) -> np.ndarray:
        return self[1]


def _random_split(labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Stratified random split: about ``fraction`` of every class, at least one if it has 2+."""
    val = []
    for c in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(fraction * members.size))
        if members.size >= 2:
            k = min(max(k, 1), members.size - 1)
        val.append(members[:k])
    val = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    train = np.setdiff1d(np.arange(labels.size), val)
    return train, val


def split_by_speaker(dataset: SpikeDataset, fraction: float = 0.1, seed: int = 0) -> Split:
    """Hold out whole speakers of ``dataset`` as a validation set of about ``fraction`` of it.

    Speakers are visited in a seeded random order; at each step the speaker whose samples
    bring the validation class histogram closest (L1) to ``fraction`` x the class totals is
    added, while that brings it closer.  So the split is roughly stratified whenever
    speakers say every class.  At least one speaker is held out and at least one kept.

    Without speaker ids (or with a single speaker) the split is a seeded random one,
    stratified by class, and ``result.warning`` says so.  Returns a :class:`Split`;
    ``train, val = split_by_speaker(ds)`` works.  Both index arrays are sorted.
    """
    if not (0.0 < float(fraction) < 1.0):
        raise EvsimError(f"validation fraction {fraction!r}; expected a number strictly between 0 and 1")
    rng = np.random.default_rng(seed)
    labels = dataset.labels
    spk = dataset.speakers
    n_speakers = 0 if spk is None else np.unique(spk).size
    if n_speakers < 2:
        why = "has no speaker ids (extra/speaker)" if spk is None else "has a single speaker"
        train, val = _random_split(labels, fraction, rng)
        return Split(train, val, False,
                     f"{dataset.path or 'the data'} {why}; the validation split is random (stratified by class), "
                     f"so one speaker's samples may fall on both sides")
    n_classes = max(dataset.n_classes, int(labels.max()) + 1 if labels.size else 0)
    speakers, inverse = np.unique(spk, return_inverse=True)
    hist = np.zeros((speakers.size, n_classes), np.int64)       # samples per (speaker, class)
    np.add.at(hist, (inverse, labels), 1)
    target = fraction * hist.sum(axis=0)
    order = rng.permutation(speakers.size)
    chosen = np.zeros(speakers.size, bool)
    current = np.zeros(n_classes)
    best = np.abs(current - target).sum()
    while chosen.sum() < speakers.size - 1:
        cand = order[~chosen[order]]
        dist = np.abs(current[None, :] + hist[cand] - target[None, :]).sum(axis=1)
        j = int(np.argmin(dist))                                 # first minimum: seeded tie break
        if chosen.any() and dist[j] >= best:
            break
        chosen[cand[j]] = True
        current = current + hist[cand[j]]
        best = dist[j]
    val_mask = chosen[inverse]
    return Split(np.flatnonzero(~val_mask), np.flatnonzero(val_mask), True, None, speakers[chosen])


# The speakers' order behind the folds is drawn with this seed, not the run's, so that fold i
# holds the same speakers in every run (recipes and seeds compared on the same voices).
FOLD_SEED = 20261126


def speaker_folds(speakers, folds: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ids, fold_of)``: the distinct speaker ids, sorted, and the fold of each: the ids in an
    order drawn with :data:`FOLD_SEED`, dealt round-robin into ``folds`` folds (fold sizes
    differ by at most one speaker)."""
    ids = np.unique(np.asarray(speakers))
    order = np.random.default_rng(FOLD_SEED).permutation(ids.size)
    fold_of = np.empty(ids.size, np.int64)
    fold_of[order] = np.arange(ids.size) % int(folds)
    return ids, fold_of


def too_few_speakers(speakers, folds: int) -> str | None:
    """None when ``speakers`` (ids per sample, or None) hold at least ``folds`` distinct
    speakers; else what they hold, for an error message ("no speaker ids ..." / "3 speaker(s)")."""
    if speakers is None:
        return "no speaker ids (extra/speaker)"
    n_speakers = np.unique(speakers).size
    return None if n_speakers >= folds else f"{n_speakers} speaker(s)"


def split_speaker_fold(dataset: SpikeDataset, folds: int, fold: int) -> Split:
    """Hold out the speakers of fold ``fold`` of ``folds`` (:func:`speaker_folds`) as validation.

    Over ``fold = 0 .. folds - 1`` every speaker of the file is held out exactly once
    (k-fold cross-validation by speaker), whatever the run's seed.  Needs speaker ids and at
    least ``folds`` speakers.
    """
    if not (isinstance(folds, (int, np.integer)) and folds >= 2):
        raise EvsimError(f"val_folds: {folds!r}; expected an integer >= 2 (0: no folds, val_fraction)")
    if not (isinstance(fold, (int, np.integer)) and 0 <= fold < folds):
        raise EvsimError(f"val_fold: {fold!r}; expected an integer in 0..{folds - 1} (one of val_folds = {folds})")
    spk = dataset.speakers
    what = too_few_speakers(spk, folds)
    if what:
        raise EvsimError(f"val_folds: {folds} folds of speakers, but {dataset.path or 'the data'} has {what}; "
                         f"expected at least {folds} speakers (or use val_fraction)")
    ids, fold_of = speaker_folds(spk, folds)
    held = (fold_of == fold)[np.searchsorted(ids, spk)]
    return Split(np.flatnonzero(~held), np.flatnonzero(held), True, None, ids[fold_of == fold])


def n_batches(n_samples: int, batch_size: int, augment: Augment | None = None, drop_last: bool = False) -> int:
    """Number of batches :func:`iterate_batches` yields (for learning-rate schedules)."""
    total = int(n_samples) * (1 if augment is None else augment.factor)
    return total // batch_size if drop_last else -(-total // batch_size)


def iterate_batches(dataset: SpikeDataset, indices, batch_size: int, rng: np.random.Generator, *,
                    shuffle: bool = True, augment: Augment | None = None, drop_last: bool = False):
    """Yield ``(x, y)``: x (B, n_steps, n_inputs) float32 counts, y (B,) int64 labels.

    Every sample of ``indices`` appears once, or ``augment.factor`` times with ``augment``
    (as it is, channel-shifted, blended with a random other sample of its class drawn from
    ``indices``), all views shuffled together when ``shuffle``; then every view is moved by
    the voice transforms of ``augment`` (frequency shift, time stretch) when they are on.  Without shuffling the order
    is ``indices`` (each sample's views following it).  The last batch is smaller unless
    ``drop_last``.  All randomness comes from ``rng``.
    """
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if not (isinstance(batch_size, (int, np.integer)) and batch_size >= 1):
        raise EvsimError(f"batch_size: {batch_size!r}; expected a positive integer")
    views = (0,) if augment is None else augment.views
    items = np.repeat(idx, len(views))
    kinds = np.tile(np.asarray(views, np.int8), idx.size)
    if shuffle:
        perm = rng.permutation(items.size)
        items, kinds = items[perm], kinds[perm]
    members = dataset.class_members(idx) if augment is not None and augment.blend else {}
    stop = items.size - (items.size % batch_size if drop_last else 0)
    for start in range(0, stop, batch_size):
        b_items, b_kinds = items[start:start + batch_size], kinds[start:start + batch_size]
        x = dataset.dense(b_items)
        if augment is not None:
            rows = np.flatnonzero(b_kinds == 1)
            if rows.size:
                x[rows] = shift_channels(x[rows], augment.max_shift, rng)
            rows = np.flatnonzero(b_kinds == 2)
            if rows.size:
                partners = _partners(b_items[rows], dataset.labels, members, rng)
                x[rows] = blend(x[rows], dataset.dense(partners), rng, augment.keep)
            x = voice_transform(x, augment.freq_shift, augment.time_stretch, rng, augment.freq_mask, augment.freq_masks,
                                augment.spike_drop)
        yield x, dataset.labels[b_items].astype(np.int64)


def _partners(items: np.ndarray, labels: np.ndarray, members: dict, rng: np.random.Generator) -> np.ndarray:
    """For each item, a uniformly drawn other member of its class (itself if it is alone)."""
    out = np.empty_like(items)
    for j, i in enumerate(items):
        pool = members[int(labels[i])]
        if pool.size == 1:
            out[j] = pool[0]
            continue
        k = int(rng.integers(pool.size - 1))
        pick = pool[k]
        out[j] = pool[-1] if pick == i else pick               # skip i: its slot takes the last one
    return out
