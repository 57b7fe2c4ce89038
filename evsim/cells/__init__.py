"""Neuron cells beyond the LIF layer of :mod:`evsim.model` (see :mod:`evsim.cells.csgru`)."""
