"""Parameters of the Heidelberg cochlea chain, where each value comes from, and the presets.

The chain (Cramer et al. 2020, "The Heidelberg Spiking Data Sets", IEEE TNNLS, section
III-A; the reference implementation is the ``lauscher`` package):

1. RMS normalisation of the waveform to ``rms_level``;
2. an onset/offset Hann window (``window_ramp_s``);
3. the Sieroka et al. (2006) hydrodynamic basilar membrane: ``channels`` places along
   the membrane, each a linear filter of the sound (see :mod:`evsim.audio.basilar`);
4. the Meddis (1986, 1988) inner hair cell: transmitter pools turning the membrane
   velocity of each place into a release probability per sample;
5. bushy cells: ``n_fibres`` auditory-nerve fibres per place, each spiking with that
   probability and then refractory, converge on one leaky integrate-and-fire bushy cell
   whose spikes are the output (one channel per place).

Values: every default below is ``lauscher`` 1.0.1's (PyPI, the version the shared
spoken-digit data and so the built-in models were encoded with), read from its public
sources for the numbers only.  Symbols follow the papers.

Where public versions differ (see :data:`PRESETS`):

* ``lauscher`` 1.0.1 writes the basilar stiffness constant ``c0 = 10e8`` (1e9); an earlier
  upstream revision had ``10e7`` (1e8), which puts every place's best frequency a factor
  ~3.2 lower.
* The fork ``danilo-bc/lauscher-shd``, made to "match the parameters cited in the SHD
  article", changes the hair cell to ``y = 11.11, g = 1000, l = 1250, r = 16667, x = 250``
  and the window to 30 ms ramps (1.0.1: the ramps span the whole recording, i.e. one Hann
  window over the file).  It is preset ``"shd-paper"``.

evsim's default is ``"lauscher-1.0.1"``: it is the chain the shared spike files were made
with, so a recording encoded by evsim looks like the training data of the built-in
models (the accuracy target of issue 12 depends on that).  ``"shd-paper"`` is there for
users who want the published table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from ..errors import EvsimError

__all__ = ["CochleaParams", "PRESETS", "preset"]


@dataclass(frozen=True)
class CochleaParams:
    """All parameters of the chain; defaults = lauscher 1.0.1.  Units in brackets."""

    # -- input ------------------------------------------------------------------------
    #: every recording is resampled to this rate [Hz] (the shared audio's rate); the
    #: membrane output and everything after it run at half of it (lauscher's convention:
    #: its membrane stage returns ``num_samples // 2 + 1`` samples at ``fs // 2``).
    sample_rate: int = 22050
    #: target RMS of the normalised waveform (lauscher ``Wave2Spike``: ``RmsNormalizer(0.3)``)
    rms_level: float = 0.3
    #: length of each Hann ramp [s]; None = half the recording each (one Hann window over
    #: the whole file, lauscher 1.0.1's ``HanningWindow()`` default); the fork uses 0.03.
    window_ramp_s: float | None = None

    # -- basilar membrane (Sieroka, Dosch & Rupp 2006, lauscher ``BasilarMembrane``) -----
    channels: int = 700          #: places, evenly spaced in x from 0 (base) to ``length``
    length: float = 3.5          #: membrane length [cm] (lauscher ``c``)
    a: float = 3500.0            #: stiffness offset [g cm^-2 s^-2]: s(x) = c0 exp(-alpha x) - a
    alpha: float = 3.0           #: stiffness decay rate along the membrane [cm^-1]
    rho: float = 1.0             #: fluid density [g cm^-3]
    c0: float = 1e9              #: stiffness at the base [g cm^-2 s^-2] (lauscher 1.0.1 ``10e8``)
    de: float = 0.15             #: damping factor: r(x) = de sqrt(c0 m) exp(-alpha x / 2)
    h: float = 0.1               #: height of the scala (fluid channel) [cm]
    m: float = 0.05              #: membrane mass per area [g cm^-2]

    # -- inner hair cell (Meddis 1986/1988, lauscher ``HairCell``) --------------------
    y: float = 5.05              #: replenishment rate of the free pool [s^-1]
    g: float = 2000.0            #: permeability gain [s^-1]
    l: float = 2500.0            #: loss rate from the cleft [s^-1]
    r: float = 6580.0            #: reuptake rate from the cleft [s^-1]
    x: float = 66.3              #: reprocessing rate back to the free pool [s^-1]
    A: float = 5.0               #: permeability offset (lauscher ``a``)
    B: float = 300.0             #: permeability saturation (lauscher ``b``)
    hc_h: float = 50000.0        #: cleft content -> firing rate factor [s^-1] (lauscher ``h``)
    M: float = 1.0               #: maximum free transmitter (lauscher ``m``)

    # -- bushy cells (Cramer et al. 2020; lauscher ``BushyCell``) ----------------------
    n_fibres: int = 40           #: auditory-nerve fibres converging on one bushy cell (at most 63)
    tau_mem: float = 1e-3        #: bushy membrane time constant [s]
    tau_syn: float = 5e-4        #: synaptic current time constant [s]
    tau_refrac: float = 1e-3     #: refractory period of fibres and bushy cell [s]
    weight: float = 13e3         #: total synaptic weight, shared by the fibres [s^-1]

    def __post_init__(self):
        if self.sample_rate < 2000 or self.sample_rate % 2:
            raise EvsimError(f"cochlea sample_rate = {self.sample_rate}; expected an even rate >= 2000 Hz")
        if self.channels < 1 or not 1 <= self.n_fibres <= 63:
            raise EvsimError(f"cochlea channels = {self.channels}, n_fibres = {self.n_fibres}; expected channels >= 1 "
                             f"and 1 <= n_fibres <= 63 (the fibre kernel's count has 6 bits)")
        for name in ("rms_level", "tau_mem", "tau_syn", "tau_refrac", "weight", "c0", "m", "h"):
            if not getattr(self, name) > 0:
                raise EvsimError(f"cochlea parameter {name} = {getattr(self, name)!r}; expected > 0")
        if self.window_ramp_s is not None and not self.window_ramp_s >= 0:
            raise EvsimError(f"cochlea window_ramp_s = {self.window_ramp_s!r}; expected >= 0 or None")

    @property
    def out_rate(self) -> float:
        """Rate of the membrane, hair-cell and bushy stages [Hz]: half the input rate."""
        return self.sample_rate // 2

    def replace(self, **changes) -> "CochleaParams":
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise EvsimError(f"unknown cochlea parameter(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def membrane_key(self) -> str:
        """Hash of the parameters the membrane filters depend on (their disk cache key)."""
        names = ("sample_rate", "channels", "length", "a", "alpha", "rho", "c0", "de", "h", "m")
        blob = json.dumps({**{n: getattr(self, n) for n in names}, "kernel_version": 2}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


#: Named parameter sets (see the module docstring for where each comes from).
PRESETS = {
    "lauscher-1.0.1": CochleaParams(),
    "shd-paper": CochleaParams(y=11.11, g=1000.0, l=1250.0, r=16667.0, x=250.0, window_ramp_s=0.03),
}


def preset(name: str) -> CochleaParams:
    try:
        return PRESETS[name]
    except KeyError:
        raise EvsimError(f"unknown cochlea preset {name!r}; expected one of: {', '.join(PRESETS)}") from None
