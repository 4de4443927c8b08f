"""The external-state step model: one sample in, the recurrent state of every layer in and out as plain tensors.

Built from the trained weights with plain ops only (MatMul, Add, Sub, Logistic, Tanh, Mul, Split, Concat, and a
strided slice for a convolutional front-end's window): no WHILE,
no TensorList, no variables. So it quantizes to full int8 with every tool and maps onto an Edge TPU, and the runner
owns the state (docs/design.md, "The central idea"). Stepping it over a window reproduces the sequence model.

Tensor names: input `x` [1, F] (a frame model's [1, S·F]: S samples, oldest first; and `x_reverse` for a BiLSTM:
the sample at T-1-t), states `conv{j}` (a causal
convolution's last K-1 inputs), `h{l}`, `c{l}` (c for LSTM and peephole LSTM; a BiLSTM's backward direction `hb{l}`,
`cb{l}`), `pool` (a max-pooled head's running max); outputs `y` and `<state>_out`.
A stacked BiLSTM cannot be stepped (its second layer needs the whole first-layer sequence in both directions):
its windowed runner uses the sequence model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from ..capabilities import cfg_arch, why_not
from ..errors import InputError
from ..runtime.interpreter import Interpreter, Tensor
from .config import ModelConfig


@dataclass
class Cell:
    """One recurrent cell's weights: kind is lstm, peephole or gru."""

    kind: str
    kernel: np.ndarray
    recurrent: np.ndarray
    bias: np.ndarray
    peephole: np.ndarray | None = None
    h: str = "h0"
    c: str | None = "c0"
    x: str = "x"
    c_scale: np.ndarray | None = None  # int8 LSTM: the state carries c / c_scale per unit (scale_cell_state)


@dataclass
class Conv:
    """One causal Conv1D layer of the front-end, as a step: its last K-1 inputs are a state `conv{j}`
    [1, (K-1)·F_in] (oldest first), so one FullyConnected over [state, x] is the convolution at this sample."""

    kernel: np.ndarray  # [K, F_in, F_out], as Keras stores it
    bias: np.ndarray
    state: str

    @property
    def buffered(self) -> int:
        """Values the state holds: (K-1)·F_in (0 for K=1, a pointwise layer with no state)."""
        return (self.kernel.shape[0] - 1) * self.kernel.shape[1]


@dataclass
class StepModel:
    cfg: ModelConfig
    cells: list[Cell]
    head_kernel: np.ndarray
    head_bias: np.ndarray
    states: list[tuple[str, int]] = field(default_factory=list)  # (name, units) in input order
    convs: list[Conv] = field(default_factory=list)  # the front-end, applied to x before the first cell

    @property
    def input_names(self) -> list[str]:
        xs = ["x", "x_reverse"] if self.cfg.arch == "bilstm" else ["x"]
        return xs + [n for n, _ in self.states]

    @property
    def output_names(self) -> list[str]:
        return ["y"] + [f"{n}_out" for n, _ in self.states]

    def zero_state(self, batch: int = 1) -> dict[str, np.ndarray]:
        return {n: np.zeros((batch, u), np.float32) for n, u in self.states}

    def tf_function(self, batch: int | None = 1, fused: bool = True):
        """A tf.function taking named tensors and returning a dict {y, <state>_out}: what the converters see.

        fused=False gives each gate its own MatMuls (the ONNX export: see _tf_cell)."""
        from .._deps import tensorflow

        tf = tensorflow()
        F = self.cfg.n_features * self.cfg.frame
        specs = [tf.TensorSpec([batch, F], tf.float32, name=n) for n in self.input_names if n.startswith("x")]
        specs += [tf.TensorSpec([batch, u], tf.float32, name=n) for n, u in self.states]
        names = self.input_names
        classify = self.cfg.task == "classify"
        merge = self.cfg.merge
        bilstm = self.cfg.arch == "bilstm"

        def step(*args):
            # constants made inside the traced function become graph constants (captured eager tensors would
            # turn into extra inputs in tf2onnx)
            consts = [_tf_cell(tf, c, fused) for c in self.cells]
            W, b = tf.constant(self.head_kernel), tf.constant(self.head_bias)
            t = dict(zip(names, args))
            out: dict = {}
            inp = t["x"]
            for conv in self.convs:
                inp = _step_conv(tf, conv, inp, t, out)
            features = inp
            for cell, w in zip(self.cells, consts):
                x = t[cell.x] if cell.x != "x" else inp
                h, c = _step_cell(tf, cell.kind, w, x, t[cell.h], t[cell.c] if cell.c else None, cell.c_scale)
                out[f"{cell.h}_out"] = h
                if cell.c:
                    out[f"{cell.c}_out"] = c
                if not bilstm:
                    inp = h
            if self.cfg.pool != "last":  # build.py TimeMax, streamed: the running max of h + 1, from zero state
                inp = out["pool_out"] = tf.maximum(t["pool"], inp + 1.0)
            if self.cfg.pool == "maxconv":  # and of the front-end's features + 1 (ReLU: > 0 as well)
                out["cpool_out"] = tf.maximum(t["cpool"], features + 1.0)
                inp = tf.concat([inp, out["cpool_out"]], axis=-1)
            if bilstm:
                fw, bw = out["h0_out"], out["hb0_out"]
                inp = tf.concat([fw, bw], axis=-1) if merge == "concat" else fw + bw
            y = tf.matmul(inp, W) + b
            if classify:
                y = tf.nn.softmax(y)
            return {"y": y, **{k: out[k] for k in self.output_names[1:]}}

        return tf.function(step, input_signature=specs, autograph=False)

    def engine(self, batch: int, on_invoke: Callable[[dict], None] | None = None):
        """The runtime's step engine over this float model, `batch` windows at a time: stepping it is the same code
        that steps a .tflite or .onnx (runtime/engine.py). Inputs are normalized samples."""
        from ..runtime.engine import bind

        it = TFStepInterpreter(self, batch, on_invoke)
        ins = [{"name": n, "role": n if n.startswith("x") else "state"} for n in self.input_names]
        outs = [{"name": "y", "role": "y"}] + [
            {"name": f"{n}_out", "role": "state", "state_input": n} for n, _ in self.states
        ]
        F = self.cfg.n_features
        return bind(it, ins, outs, np.zeros(F, np.float32), np.ones(F, np.float32), "TF step model")

    def run_windows(self, X: np.ndarray) -> np.ndarray:
        """Step over every window [N, T, F] (normalized; batched, in TensorFlow) from zero state; y after the last
        step."""
        from ..runtime.engine import run_windows

        return run_windows(self.engine(len(X)), X)


class TFStepInterpreter(Interpreter):
    """The float TF step model as a batched interpreter (host side): what calibration and the step ≡ sequence
    checks drive through the one step engine. `on_invoke(feed)` sees every step's inputs (calibration samples)."""

    backend = "tensorflow"
    masks_padding = True  # unidirectional models: variable-length BiLSTMs are refused (capabilities)

    def __init__(self, step: StepModel, batch: int, on_invoke: Callable[[dict], None] | None = None) -> None:
        F = step.cfg.n_features * step.cfg.frame
        f32 = np.dtype(np.float32)
        units = dict(step.states)
        self._names = step.input_names
        self._states = step.states
        self.inputs = {n: Tensor(n, n, (batch, units.get(n, F)), f32) for n in self._names}
        self.outputs = {"y": Tensor("y", "y", (batch, step.cfg.n_outputs), f32)}
        self.outputs.update({f"{n}_out": Tensor(f"{n}_out", f"{n}_out", (batch, u), f32) for n, u in step.states})
        self._fn = step.tf_function(batch=None)
        self._on_invoke = on_invoke
        self._feed: dict[str, np.ndarray] = {}
        self._out: dict[str, np.ndarray] = {}

    def set(self, name: str, value: np.ndarray) -> None:
        self._feed[name] = value

    def invoke(self) -> None:
        if self._on_invoke is not None:
            self._on_invoke(self._feed)
        feed = {n: np.ascontiguousarray(self._feed[n], np.float32) for n in self._names}
        pad = np.isnan(feed["x"]).any(axis=1)  # variable-length sequences: padding leaves the state as it was
        if pad.any():
            feed = {n: np.where(np.isnan(v), np.float32(0), v) for n, v in feed.items()}
        res = self._fn(*[feed[n] for n in self._names])
        self._out = {k: v.numpy() for k, v in res.items()}
        if pad.any():
            for n, _ in self._states:
                self._out[f"{n}_out"][pad] = feed[n][pad]

    def get(self, name: str) -> np.ndarray:
        return self._out[name]


def _tf_cell(tf, cell: Cell, fused: bool = True) -> dict:
    """The cell's constants, laid out for few ops: an LSTM's four gates are one FullyConnected on x and one on h
    (then SPLIT); a GRU's update and reset gates likewise, its candidate two more.

    Each op and tensor costs bytes in the .tflite (an int8 tensor ~60 with its quantization parameters), and for a
    small model they outweigh the weights: one FullyConnected per gate and input kept int8 files bigger than float
    up to ~12 units. Fused, the gates' pre-activations share one int8 scale; on the demo LSTM and GRU (1x32) this
    lost nothing (argmax agreement with float 100 %, mean |Δ| equal or lower; on an LSTM trained without
    augmentation mean |Δ| 0.0107 vs 0.0116). The GRU's candidate stays apart: its recurrent part is multiplied by
    the reset gate, and one scale shared with the gates cost the int8-I/O GRU 0.7 points (agreement 99.3 %).

    ONNX Runtime's static QDQ does not take the fused LSTM as well (demo LSTM: mean |Δ| 0.0024 vs 0.0011 per gate,
    max |Δ| 0.40 vs 0.01), and ONNX file size is no goal there: the ONNX export keeps one MatMul per gate and
    input (fused=False), so every gate's pre-activation has its own scale."""
    if not fused:
        return _tf_cell_per_gate(tf, cell)
    if cell.kind == "gru":  # reset_after: bias rows are the input bias and the recurrent bias
        u = cell.recurrent.shape[0]
        b, rb = cell.bias
        return {
            "k": tf.constant(cell.kernel[:, : 2 * u]),
            "r": tf.constant(cell.recurrent[:, : 2 * u]),
            "b": tf.constant(b[: 2 * u] + rb[: 2 * u]),
            "kc": tf.constant(cell.kernel[:, 2 * u :]),
            "rc": tf.constant(cell.recurrent[:, 2 * u :]),
            "bc": tf.constant(b[2 * u :]),
            "rbc": tf.constant(rb[2 * u :]),
        }
    w = {"k": tf.constant(cell.kernel), "r": tf.constant(cell.recurrent), "b": tf.constant(cell.bias)}
    if cell.peephole is not None:
        w["p"] = [tf.constant(cell.peephole[i]) for i in range(3)]
    return w


def _tf_cell_per_gate(tf, cell: Cell) -> dict:
    n = 3 if cell.kind == "gru" else 4
    k = np.split(cell.kernel, n, axis=1)
    r = np.split(cell.recurrent, n, axis=1)
    if cell.kind == "gru":
        b, rb = np.split(cell.bias[0], n), np.split(cell.bias[1], n)
    else:
        b, rb = np.split(cell.bias, n), [None] * n
    w = {
        "gates": [tf.constant(a) for a in k],
        "r": [tf.constant(a) for a in r],
        "b": [tf.constant(a) for a in b],
        "rb": [None if a is None else tf.constant(a) for a in rb],
    }
    if cell.peephole is not None:
        w["p"] = [tf.constant(cell.peephole[i]) for i in range(3)]
    return w


def _step_conv(tf, conv: Conv, x, t: dict, out: dict):
    """relu(W·[last K-1 inputs, x] + b); the state drops its oldest sample and takes x (one slice, no shifts)."""
    k, f_in, f_out = conv.kernel.shape
    W = tf.constant(conv.kernel.reshape(k * f_in, f_out))
    full = tf.concat([t[conv.state], x], axis=-1) if conv.buffered else x
    if conv.buffered:
        out[f"{conv.state}_out"] = full[:, f_in:]
    return tf.nn.relu(tf.matmul(full, W) + tf.constant(conv.bias))


# tanh(c) for |c| beyond this is 1 to within 7e-4: the int8 tanh input spans only this range
TANH_CLIP = 4.0


def _step_cell(tf, kind: str, w: dict, x, h, c, c_scale=None):
    sig = tf.sigmoid
    if "gates" in w:  # per gate (_tf_cell_per_gate)
        k = w["gates"]
        if kind == "gru":
            rec = [tf.matmul(h, w["r"][g]) + w["rb"][g] for g in range(3)]
            inp = [tf.matmul(x, k[g]) + w["b"][g] for g in range(3)]
            z, r = sig(inp[0] + rec[0]), sig(inp[1] + rec[1])
            cand = tf.tanh(inp[2] + r * rec[2])
            return z * h + (1.0 - z) * cand, None
        zi, zf, zc, zo = (tf.matmul(x, k[g]) + w["b"][g] + tf.matmul(h, w["r"][g]) for g in range(4))
        return _lstm_tail(tf, kind, w, zi, zf, zc, zo, c, c_scale)
    if kind == "gru":
        # update and reset gates: one sigmoid over both (its int8 output scale is fixed, so SPLIT after it is free)
        z, r = tf.split(sig(tf.matmul(x, w["k"]) + w["b"] + tf.matmul(h, w["r"])), 2, axis=-1)
        cand = tf.tanh(tf.matmul(x, w["kc"]) + w["bc"] + r * (tf.matmul(h, w["rc"]) + w["rbc"]))
        return cand + z * (h - cand), None  # = z*h + (1-z)*cand with one op and one constant fewer
    zi, zf, zc, zo = tf.split(tf.matmul(x, w["k"]) + w["b"] + tf.matmul(h, w["r"]), 4, axis=-1)
    return _lstm_tail(tf, kind, w, zi, zf, zc, zo, c, c_scale)


def _lstm_tail(tf, kind: str, w: dict, zi, zf, zc, zo, c, c_scale):
    """From the gates' pre-activations to (h', c')."""
    sig = tf.sigmoid
    if kind == "peephole":
        p = w["p"]
        i = sig(zi + p[0] * c)
        f = sig(zf + p[1] * c)
        c2 = f * c + i * tf.tanh(zc)
        o = sig(zo + p[2] * c2)
    elif c_scale is not None:
        # c is carried as c / k per unit (k = calibrated max |c|), so each unit's int8 state uses its whole range:
        # one per-tensor scale over c spanning ±15 rounds away the small per-step increments i*g of the quiet
        # units, and the error builds up over the window (the accuracy drop of 2 points vanished; docs/metadata.md)
        i, f, o = sig(zi), sig(zf), sig(zo)
        c2 = f * c + i * tf.tanh(zc) * tf.constant((1.0 / c_scale).astype(np.float32))
        cin = tf.clip_by_value(c2 * tf.constant(c_scale.astype(np.float32)), -TANH_CLIP, TANH_CLIP)
        return o * tf.tanh(cin), c2
    else:
        i, f, o = sig(zi), sig(zf), sig(zo)
        c2 = f * c + i * tf.tanh(zc)
    return o * tf.tanh(c2), c2


def scale_cell_state(step: StepModel, samples: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """For int8: carry each plain LSTM cell's c as c / (per-unit max |c| seen in calibration). Returns the scales
    by state name (stored in the calibration NPZ as `cscale_<name>` so the converter subprocess builds the same
    graph) and rescales the calibration samples in place."""
    scales = {}
    for cell in step.cells:
        if cell.kind == "lstm" and cell.c and cell.c in samples:
            k = np.maximum(np.abs(samples[cell.c]).max(axis=0), 1e-3).astype(np.float32)
            cell.c_scale = k
            samples[cell.c] = (samples[cell.c] / k).astype(np.float32)
            scales[f"cscale_{cell.c}"] = k
    return scales


def apply_cell_scales(step: StepModel, scales: dict[str, np.ndarray]) -> StepModel:
    for cell in step.cells:
        key = f"cscale_{cell.c}"
        if cell.kind == "lstm" and key in scales:
            cell.c_scale = np.asarray(scales[key], np.float32)
    return step


def steppable(cfg: ModelConfig) -> bool:
    return why_not(cfg_arch(cfg), "step") is None


def build_step_model(cfg: ModelConfig, model) -> StepModel:
    """The step model of a trained Keras model (the layers named rnn{i}/birnn{i} and logits)."""
    if not steppable(cfg):
        raise InputError(
            f"a stacked BiLSTM ({cfg.layers} layers) has no step model: its second layer needs the whole first-layer "
            "sequence in both directions; use the sequence model (--kind sequence) for its windowed runner"
        )
    kind = "gru" if cfg.arch == "gru" else ("peephole" if cfg.peephole else "lstm")
    cells: list[Cell] = []
    states: list[tuple[str, int]] = []
    convs = []
    for j in range(len(cfg.conv)):
        layer = model.get_layer(f"conv{j}")
        if (
            getattr(layer.activation, "__name__", "") != "relu"
            or layer.padding != "causal"
            or layer.dilation_rate[0] != 1
        ):
            raise InputError(f"layer {layer.name}: only causal, undilated ReLU convolutions can be stepped")
        kernel, bias = (np.asarray(a, np.float32) for a in layer.get_weights())
        convs.append(Conv(kernel, bias, f"conv{j}"))
        if convs[-1].buffered:
            states.append((f"conv{j}", convs[-1].buffered))
    for i in range(cfg.layers):
        if cfg.arch == "bilstm":
            bi = model.get_layer(f"birnn{i}")
            pairs = [(bi.forward_layer, f"h{i}", f"c{i}", "x"), (bi.backward_layer, f"hb{i}", f"cb{i}", "x_reverse")]
        else:
            pairs = [(model.get_layer(f"rnn{i}"), f"h{i}", f"c{i}", "x")]
        for layer, h, c, x in pairs:
            cells.append(_cell_from_layer(layer, kind, h, None if kind == "gru" else c, x))
            states.append((h, cfg.units))
            if kind != "gru":
                states.append((c, cfg.units))
    if cfg.pool != "last":
        states.append(("pool", cfg.units))
    if cfg.pool == "maxconv":
        states.append(("cpool", cfg.conv[-1][1]))
    head = model.get_layer("logits")
    W, b = (np.asarray(a, np.float32) for a in head.get_weights())
    return StepModel(cfg, cells, W, b, states, convs)


def _cell_from_layer(layer, kind: str, h: str, c: str | None, x: str) -> Cell:
    weights = [np.asarray(a, np.float32) for a in layer.get_weights()]
    cell = getattr(layer, "cell", None)
    if kind in ("lstm", "gru"):
        act = getattr(cell, "activation", None)
        ract = getattr(cell, "recurrent_activation", None)
        if getattr(act, "__name__", "tanh") != "tanh" or getattr(ract, "__name__", "sigmoid") != "sigmoid":
            raise InputError(f"layer {layer.name}: only tanh/sigmoid activations can be stepped")
    if kind == "gru":
        if not getattr(cell, "reset_after", True):
            raise InputError(f"layer {layer.name}: only GRU with reset_after=True (the Keras default) can be stepped")
        k, r, b = weights
        return Cell("gru", k, r, b.reshape(2, -1), h=h, c=None, x=x)
    if kind == "peephole":
        k, r, b, p = weights
        return Cell("peephole", k, r, b, p, h=h, c=c, x=x)
    k, r, b = weights
    return Cell("lstm", k, r, b, h=h, c=c, x=x)
