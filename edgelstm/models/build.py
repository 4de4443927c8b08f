"""Keras builders for LSTM, GRU and BiLSTM models (tf_keras: its LSTM fuses and quantizes in TFLite; docs/design.md)."""

from __future__ import annotations

from .._deps import keras as _keras
from .._deps import tensorflow as _tensorflow
from .config import PAD, ModelConfig

keras = _keras()
tf = _tensorflow()


@keras.utils.register_keras_serializable(package="edgelstm")
class PeepholeLSTMCell(keras.layers.Layer):
    """LSTM cell whose gates also see the cell state (Gers & Schmidhuber, 2000): i, f from c_{t-1}, o from c_t.

    Keras has no such cell any more; it stays small so the step model can rebuild it from its weights.
    """

    def __init__(self, units: int, **kwargs) -> None:
        super().__init__(**kwargs)
        self.units = units
        self.state_size = [units, units]
        self.output_size = units

    def build(self, input_shape) -> None:
        u = self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], 4 * u), initializer="glorot_uniform")
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (u, 4 * u), initializer="orthogonal")

        def bias_init(shape, dtype=None):
            return tf.concat([tf.zeros((u,)), tf.ones((u,)), tf.zeros((2 * u,))], 0)  # forget bias 1

        self.bias = self.add_weight("bias", (4 * u,), initializer=bias_init)
        self.peephole = self.add_weight("peephole", (3, u), initializer="zeros")  # rows: i, f, o
        self.built = True

    def call(self, inputs, states):
        h, c = states
        z = tf.matmul(inputs, self.kernel) + tf.matmul(h, self.recurrent_kernel) + self.bias
        zi, zf, zc, zo = tf.split(z, 4, axis=-1)
        i = tf.sigmoid(zi + self.peephole[0] * c)
        f = tf.sigmoid(zf + self.peephole[1] * c)
        c2 = f * c + i * tf.tanh(zc)
        o = tf.sigmoid(zo + self.peephole[2] * c2)
        h2 = o * tf.tanh(c2)
        return h2, [h2, c2]

    def get_config(self) -> dict:
        return {**super().get_config(), "units": self.units}


@keras.utils.register_keras_serializable(package="edgelstm")
class TimeMax(keras.layers.Layer):
    """max over time of (h_t + 1), padding excluded: the head sees the strongest response of each unit anywhere in
    the window, not only what the last state kept (ACSF1, BasicMotions: the strongest evidence is rarely at the end).

    h is tanh-bounded (a conv front-end's features, --pool maxconv, are ReLU's), so h + 1 > 0 and a running max that
    starts at 0 streams it exactly: the step model carries it as one more state from the runner's zero state, and
    padding (mask 0) adds nothing."""

    def call(self, inputs, mask=None):
        z = inputs + 1.0
        if mask is not None:
            z = z * tf.cast(mask, z.dtype)[..., None]
        return tf.reduce_max(z, axis=1)

    def compute_mask(self, inputs, mask=None):
        return None


CUSTOM_OBJECTS = {"PeepholeLSTMCell": PeepholeLSTMCell, "TimeMax": TimeMax}


def recurrent_layer(cfg: ModelConfig, units: int, return_sequences: bool, name: str):
    """One recurrent layer of the configured kind (no dropout inside the cell: it would block LSTM fusion)."""
    if cfg.peephole:
        return keras.layers.RNN(PeepholeLSTMCell(units), return_sequences=return_sequences, name=name)
    if cfg.arch == "gru":
        return keras.layers.GRU(units, return_sequences=return_sequences, name=name)
    return keras.layers.LSTM(units, return_sequences=return_sequences, name=name)


def masked(layer, x, mask):
    """The layer on x with the explicit mask, or with none passed: an explicit mask=None would stop Keras from
    handing on the Masking layer's own mask."""
    return layer(x, mask=mask) if mask is not None else layer(x)


def build_model(cfg: ModelConfig, batch_size: int | None = None):
    """The whole-sequence model: [B, T, F] → class probabilities, or outputs in normalized units.

    Classification ends in a Dense named "logits" and a softmax named "probs", so distillation can reach the logits.
    Export builds it with batch_size=1: the converter cannot lower a recurrent loop with a dynamic batch.
    """
    raw = inp = keras.Input((cfg.window, cfg.n_features), batch_size=batch_size, name="x")
    if cfg.frame > 1:  # frames of S samples, one per step: S times fewer steps over a long window
        inp = keras.layers.Reshape((cfg.window // cfg.frame, cfg.frame * cfg.n_features), name="frames")(raw)
    x = keras.layers.Masking(mask_value=PAD, name="mask")(inp) if cfg.masked and not cfg.conv else inp
    # a convolution drops Keras's mask, so the cells get the input's mask directly. Sequences are pre-padded: the
    # causal convolution sees zeros before each sequence, as the step model's zero state does
    mask = keras.layers.Masking(mask_value=PAD, name="mask").compute_mask(inp) if cfg.masked and cfg.conv else None
    for j, (kernel, filters) in enumerate(cfg.conv):
        # causal: output t sees inputs t-K+1..t only, so the step model carries the last K-1 inputs as state
        x = keras.layers.Conv1D(filters, kernel, padding="causal", activation="relu", name=f"conv{j}")(x)
    features = x
    for i in range(cfg.layers):
        last = i == cfg.layers - 1
        layer = recurrent_layer(cfg, cfg.units, not last or cfg.pool != "last", name=f"rnn{i}")
        if cfg.arch == "bilstm":
            layer = keras.layers.Bidirectional(layer, merge_mode=cfg.merge, name=f"birnn{i}")
        x = masked(layer, x, mask)
        if last and cfg.pool != "last":
            x = masked(TimeMax(name="pool"), x, mask)
            if cfg.pool == "maxconv":
                x = keras.layers.Concatenate(name="pools")([x, masked(TimeMax(name="cpool"), features, mask)])
        if cfg.dropout > 0:
            x = keras.layers.Dropout(cfg.dropout, name=f"dropout{i}")(x)
    out = keras.layers.Dense(cfg.n_outputs, name="logits")(x)
    if cfg.task == "classify":
        out = keras.layers.Activation("softmax", name="probs")(out)
    return keras.Model(raw, out, name=f"{cfg.arch}_{cfg.task}")


def count_params(model) -> int:
    return int(model.count_params())
