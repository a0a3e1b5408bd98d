"""Order entry and response latency models of the passive exchange: a constant, or a recorded distribution.

A latency model is a 1-D int64 array of latencies in ns. One value is a constant latency; several
values are a recorded distribution (for example the round trips of a live session, halved, or the
gaps between a venue's ack stamps and our send stamps), sampled uniformly with replacement, one draw
per request or response: the empirical distribution itself, so every quantile of the draws converges
to the recorded one. The generator is SplitMix64 (Steele, Lea and Flood, "Fast splittable
pseudorandom number generators", OOPSLA 2014), its 64-bit state kept in a caller's array, so a run
is reproducible from its seed and two exchanges never share a stream.

Public API
----------
* :func:`latency_model` validates a constant or a distribution and returns the model array.
* :func:`new_rng_state` returns the generator state (uint64[1]) for a seed.
* :func:`draw_latency` (numba, inlined) returns one latency in ns; a constant model returns its
  value without touching the generator.
* :func:`rng_below` (numba, inlined) returns a uniform integer in ``[0, n)``.
"""

from __future__ import annotations

import numpy as np

from scalper.lowlevel.jit import inline_kernel

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)


def latency_model(name: str, latency_ns: int | np.ndarray) -> np.ndarray:
    """Return the model array (int64[M], ns) for a constant (an int) or a recorded distribution (1-D array).

    Raises
    ------
    ValueError
        Naming ``name``: an empty or non-1-D array, a non-integral or non-finite value, or a
        negative latency.
    """
    arr = np.asarray(latency_ns)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be an int or a non-empty 1-D array of ns; got shape {arr.shape}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.floor(arr)):
            raise ValueError(f"{name} must hold whole ns; got a non-integral or non-finite value")
    elif arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integer ns; got dtype {arr.dtype}")
    out = arr.astype(np.int64)
    if np.any(out < 0):
        if out.shape[0] == 1:
            raise ValueError(f"{name} must be >= 0; got {int(out[0])!r}")
        raise ValueError(f"{name} must be >= 0 ns everywhere; got min {int(out.min())}")
    return out


def new_rng_state(seed: int) -> np.ndarray:
    """Return the generator state (uint64[1]) for ``seed`` (any int; taken modulo 2**64)."""
    return np.array([seed % (1 << 64)], dtype=np.uint64)


@inline_kernel
def _next_u64(rng):
    # SplitMix64: the state advances by the golden gamma, the output is its mixed value.
    z = rng[0] + _GOLDEN
    rng[0] = z
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@inline_kernel
def rng_below(rng, n):
    """Return a uniform int64 in ``[0, n)`` (``n`` >= 1) and advance ``rng`` (uint64[1]).

    The top 53 bits modulo ``n``: the bias is at most ``n / 2**53``, far below any sample size.
    """
    return np.int64(_next_u64(rng) >> _S11) % n


@inline_kernel
def draw_latency(model, rng):
    """Return one latency (int64 ns) from ``model`` (int64[M]): its value when ``M == 1``, else a uniform draw."""
    m = model.shape[0]
    if m == 1:
        return model[0]
    return model[rng_below(rng, m)]
