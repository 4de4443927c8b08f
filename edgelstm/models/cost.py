"""What a recurrent model costs per time step, computed from its shape alone (pure Python, no TensorFlow).

Counted: the multiply-accumulates of every matrix product (input and recurrent kernels, the dense head) plus the
element-wise gate products, per sample the step model consumes. Activations and bias additions are not MACs.
"""

from __future__ import annotations

from ..errors import InputError


def cell_macs(arch: str, n_in: int, units: int, peephole: bool = False) -> int:
    """One direction of one recurrent layer, one time step.

    LSTM: 4 gates × (n_in + units) × units, then f⊙c, i⊙g, o⊙tanh(c) (3 × units); peepholes add 3 × units.
    GRU (Keras reset_after): 3 × (n_in + units) × units, then r⊙(U_h h), z⊙h, (1−z)⊙h̃ (3 × units).
    """
    if arch in ("lstm", "bilstm"):
        return 4 * (n_in + units) * units + 3 * units + (3 * units if peephole else 0)
    if arch == "gru":
        return 3 * (n_in + units) * units + 3 * units
    raise InputError(f"unknown arch {arch!r}")


def macs_per_step(
    arch: str,
    units: int,
    layers: int,
    n_features: int,
    n_outputs: int,
    merge: str = "concat",
    peephole: bool = False,
    conv: list[list[int]] | tuple = (),
    pool: str = "last",
) -> int:
    """MACs per input sample: the convolutional front-end (K × F_in × F_out per layer), every recurrent layer (both
    directions of a BiLSTM) plus the dense head, as the step model runs it (the head once per step). A BiLSTM
    cannot stream; its figure is the per-sample share of a window."""
    return _walk(arch, units, layers, n_features, n_outputs, merge, conv, pool, macs=True, peephole=peephole)


def _walk(arch, units, layers, n_features, n_outputs, merge, conv, pool, macs: bool, peephole: bool) -> int:
    """Layer by layer as the model is built, adding each layer's MACs (macs=True) or parameters (its weights plus
    biases): the one walk both counts share. A `maxconv` head also sees the last conv layer's pooled features."""
    bias = 0 if macs else 1
    cell = cell_macs if macs else cell_params
    directions = 2 if arch == "bilstm" else 1
    total = 0
    n_in = n_features
    for kernel, filters in conv:
        total += (kernel * n_in + bias) * filters
        n_in = filters
    for _ in range(layers):
        total += directions * cell(arch, n_in, units, peephole)
        n_in = units * (2 if arch == "bilstm" and merge == "concat" else 1)
    if pool == "maxconv":
        n_in += conv[-1][1]
    return total + (n_in + bias) * n_outputs


def cell_params(arch: str, n_in: int, units: int, peephole: bool = False) -> int:
    """Weights of one direction of one recurrent layer, as Keras counts them: LSTM 4 gates × (n_in + units + 1)
    × units (+3 × units of peepholes); GRU with reset_after 3 × (n_in + units + 2) × units (two biases)."""
    if arch in ("lstm", "bilstm"):
        return 4 * (n_in + units + 1) * units + (3 * units if peephole else 0)
    if arch == "gru":
        return 3 * (n_in + units + 2) * units
    raise InputError(f"unknown arch {arch!r}")


def param_count(
    arch: str,
    units: int,
    layers: int,
    n_features: int,
    n_outputs: int,
    merge: str = "concat",
    peephole: bool = False,
    conv: list[list[int]] | tuple = (),
    pool: str = "last",
) -> int:
    """The model's parameters from its shape alone (what Keras' count_params gives), so a size budget can be
    checked before anything is trained."""
    return _walk(arch, units, layers, n_features, n_outputs, merge, conv, pool, macs=False, peephole=peephole)


def config_macs(cfg) -> int:
    """`macs_per_step` of a `ModelConfig`: one step of its step model (a frame model's step is S samples)."""
    if cfg.arch == "rocket":
        return rocket_macs(cfg.window, cfg.n_features, cfg.n_outputs, cfg.units)
    return macs_per_step(
        cfg.arch,
        cfg.units,
        cfg.layers,
        cfg.n_features * cfg.frame,
        cfg.n_outputs,
        cfg.merge,
        cfg.peephole,
        cfg.conv,
        cfg.pool,
    )


def streams(arch: str) -> bool:
    """Whether the model is causal, so a device can step it sample by sample (a BiLSTM needs the future)."""
    return arch != "bilstm"


def rocket_macs(window: int, n_features: int, n_outputs: int, shares: int) -> int:
    """One step of a rocket model: 9 taps per kernel response (84 per dilation and channel), and per share a
    comparison and its row of the head."""
    from ..runtime.rocket import KERNELS, TAPS, dilations

    return len(dilations(window)) * n_features * len(KERNELS) * TAPS + shares * (1 + n_outputs)


def rocket_params(shares: int, n_outputs: int) -> int:
    """A rocket model's parameters: a threshold and a row of head weights per share (metrics.json's `params`)."""
    return shares * (1 + n_outputs)
