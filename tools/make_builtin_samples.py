"""Write evsim/data/samples.h5: the first sample of each class of a labelled SHD-layout file.

    python tools/make_builtin_samples.py ../shared/data/digits/digits_test.h5

These samples only demonstrate `evsim run`; nothing is tuned on them.
"""

import os
import sys

import numpy as np

from evsim.data import SpikeFile, write_spike_file


def main(src: str, dst: str = os.path.join(os.path.dirname(__file__), "..", "evsim", "_builtin", "samples.h5")) -> None:
    with SpikeFile(src) as f:
        labels = f.labels
        picks = [int(np.nonzero(labels == c)[0][0]) for c in np.unique(labels)]
        samples = [f.read(i) for i in picks]
        names = f.class_names
        speakers = f.speakers[picks] if f.speakers is not None else None
    write_spike_file(dst, [(s.times, s.units) for s in samples], labels=[s.label for s in samples],
                     class_names=names, speakers=speakers)
    print(f"wrote {len(samples)} samples to {os.path.normpath(dst)} ({os.path.getsize(dst) // 1024} KiB)")


if __name__ == "__main__":
    main(*sys.argv[1:])
