"""`convert --to c --mode int8`: the int8 step .tflite translated op by op into integer C.

The graph is read from the quantized file itself (weights, scales, zero points), and each op computes what TFLite's
reference int8 kernels compute (the ones TFLite Micro runs): FULLY_CONNECTED, ADD, SUB and MUL with TFLite's
fixed-point requantization (QuantizeMultiplier, SaturatingRoundingDoublingHighMul, RoundingDivideByPOT: double
rounding), LOGISTIC and TANH through the 256-entry tables TFLite fills (LUTPopulate), SOFTMAX through its float exp
table, SPLIT and CONCATENATION as copies. Boundary: the raw sample is normalized and quantized (QUANTIZE: round half
away from zero); the state is carried as int8 in its input's quantization (a 256-entry table where the output's
differs: the runner's float round trip); y is dequantized. No math.h; float only at the boundary and in the softmax.
An op outside this list is refused by name.

Measured (tiny random LSTM, peephole, GRU over 3000 samples): bit-exact with TFLite Micro; a 2-layer LSTM differs
in 0.01 % of outputs by one step. LiteRT's CPU kernels depart from the reference: its int8 FULLY_CONNECTED rounds
~0.4 % of outputs one step differently, and the recurrence carries it: up to 3-6 output steps of 1/256, argmax
agreement 98.9-99.8 % against LiteRT (docs/microcontrollers.md).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import InputError

OPS = (
    "QUANTIZE",
    "DEQUANTIZE",
    "FULLY_CONNECTED",
    "ADD",
    "SUB",
    "MUL",
    "LOGISTIC",
    "TANH",
    "SPLIT",
    "CONCATENATION",
    "SOFTMAX",
)


def quantize_multiplier(m: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: m = q * 2^shift with q a Q31 fixed-point number in [0.5, 1)."""
    if m == 0.0:
        return 0, 0
    q, shift = math.frexp(m)
    qf = int(round_away(q * (1 << 31)))
    if qf == 1 << 31:
        qf //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return qf, shift


def round_away(v):
    """std::round: halves away from zero (numpy's rint rounds them to even)."""
    v = np.asarray(v, np.float64)
    return np.sign(v) * np.floor(np.abs(v) + 0.5)


def lut(s_in: float, z_in: int, s_out: float, z_out: int, fn) -> np.ndarray:
    """TFLite's LUTPopulate<int8_t>, in float32 as it computes it; indexed by the input byte (uint8 view)."""
    vals = np.arange(-128, 128, dtype=np.int32)
    deq = np.float32(s_in) * (vals - z_in).astype(np.float32)
    out = fn(deq.astype(np.float32)).astype(np.float32)
    q = round_away(out * np.float32(1.0 / np.float32(s_out))) + z_out
    return _by_byte(vals, np.clip(q, -128, 127).astype(np.int8))


def _by_byte(vals: np.ndarray, table: np.ndarray) -> np.ndarray:
    out = np.empty(256, np.int8)
    out[vals & 0xFF] = table
    return out


def requant_table(q_from: tuple[float, int], q_to: tuple[float, int]) -> np.ndarray:
    """int8 → float (DEQUANTIZE) → int8 (QUANTIZE) as LiteRT computes the round trip, by input byte."""
    vals = np.arange(-128, 128, dtype=np.int32)
    f = np.float32(q_from[0]) * (vals - q_from[1]).astype(np.float32)
    q = round_away((f / np.float32(q_to[0])).astype(np.float32)) + q_to[1]
    return _by_byte(vals, np.clip(q, -128, 127).astype(np.int8))


class Graph:
    """The int8 step .tflite as LiteRT's builtin kernels see it: ops in execution order, tensors, constants."""

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        it = Interpreter(
            model_path=str(path),
            experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
        it.allocate_tensors()
        self.tensors = {t["index"]: t for t in it.get_tensor_details()}
        self.ops = it._get_ops_details()
        sig = it.get_signature_runner()
        self.inputs = {n: d["index"] for n, d in sig.get_input_details().items()}
        self.outputs = {n: d["index"] for n, d in sig.get_output_details().items()}
        produced = {o for op in self.ops for o in op["outputs"]}
        self.consts = {}
        for i in self.tensors:
            if i not in produced and i not in self.inputs.values():
                try:
                    self.consts[i] = np.array(it.get_tensor(i))
                except ValueError:
                    pass
        bad = sorted({op["op_name"] for op in self.ops} - set(OPS))
        if bad:
            raise InputError(f"{path}: op(s) {', '.join(bad)} have no int8 C form here (known: {', '.join(OPS)})")

    def q(self, i: int) -> tuple[float, int]:
        p = self.tensors[i]["quantization_parameters"]
        if len(p["scales"]) != 1:
            raise InputError(f"tensor {self.tensors[i]['name']!r}: per-channel quantization has no int8 C form here")
        return float(p["scales"][0]), int(p["zero_points"][0])

    def size(self, i: int) -> int:
        return int(np.prod(self.tensors[i]["shape"])) if len(self.tensors[i]["shape"]) else 1

    def dtype(self, i: int):
        return np.dtype(self.tensors[i]["dtype"])


def _ints(name: str, ctype: str, values) -> str:
    flat = [int(v) for v in np.asarray(values).ravel()]
    rows = ",\n".join("    " + ", ".join(str(v) for v in flat[k : k + 16]) for k in range(0, len(flat), 16))
    return f"static const {ctype} {name}[{len(flat)}] = {{\n{rows}\n}};\n"


def _floats(name: str, values, static: bool = True) -> str:
    from .csource import _array

    return _array(name, values, static)


TRACE_C = """\
#ifdef EDGELSTM_TRACE /* every op's int8 output on stderr, for comparing with the interpreter's tensors */
#include <stdio.h>
static void trace(int i, const signed char *b, int n)
{
    int k;
    fprintf(stderr, "t%d", i);
    for (k = 0; k < n; ++k) {
        fprintf(stderr, " %d", b[k]);
    }
    fprintf(stderr, "\\n");
}
#define TRACE(i, b, n) trace(i, b, n)
#else
#define TRACE(i, b, n)
#endif

"""

RUNTIME_C = """\
typedef signed char i8;

#if defined(__GNUC__) || defined(__clang__)
#define MAYBE_UNUSED __attribute__((unused))
#else
#define MAYBE_UNUSED
#endif

MAYBE_UNUSED static int32_t srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    int32_t nudge;
    if (a == b && a == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

MAYBE_UNUSED static int32_t rdbypot(int32_t x, int e)
{
    int32_t mask = (int32_t)(((int64_t)1 << e) - 1);
    int32_t rem = x & mask;
    int32_t thr = (mask >> 1) + (x < 0 ? 1 : 0);
    return (x >> e) + (rem > thr ? 1 : 0);
}

/* TFLite's MultiplyByQuantizedMultiplier (double rounding) */
MAYBE_UNUSED static int32_t mbqm(int32_t x, int32_t m, int shift)
{
    int left = shift > 0 ? shift : 0;
    int right = shift > 0 ? 0 : -shift;
    return rdbypot(srdhm((int32_t)((uint32_t)x << left), m), right);
}

/* ruy's ApplyMultiplier, which LiteRT's int8 FULLY_CONNECTED uses on CPU: one rounding, ties upward */
MAYBE_UNUSED static int32_t mbqm_ruy(int32_t x, int32_t m, int shift)
{
    int total = 31 - shift;
    int64_t r = (int64_t)x * (int64_t)m + ((int64_t)1 << (total - 1));
    return (int32_t)(r >> total);
}

MAYBE_UNUSED static i8 sat8(int32_t v)
{
    return (i8)(v < -128 ? -128 : (v > 127 ? 127 : v));
}

/* float -> int8 as TFLite's QUANTIZE: round(v / scale) half away from zero, + zero point, saturated */
MAYBE_UNUSED static i8 quant8(float v, float scale, int32_t zp)
{
    float r = v / scale;
    float t;
    if (r > 1.0e6f) {
        return 127;
    }
    if (r < -1.0e6f) {
        return -128;
    }
    t = (float)(int32_t)r;
    if (r - t >= 0.5f) {
        t += 1.0f;
    } else if (t - r >= 0.5f) {
        t -= 1.0f;
    }
    return sat8((int32_t)t + zp);
}

MAYBE_UNUSED static void fc(const i8 *x, int n_in, int32_t x_off, const i8 *w, const int32_t *b, int n_out,
                            int32_t m, int sh, int32_t zo, i8 *y)
{
    int j, i;
    for (j = 0; j < n_out; ++j) {
        int32_t acc = b ? b[j] : 0;
        const i8 *row = w + j * n_in;
        for (i = 0; i < n_in; ++i) {
            acc += (int32_t)row[i] * ((int32_t)x[i] + x_off);
        }
        y[j] = sat8(mbqm(acc, m, sh) + zo);
    }
}

/* ADD (sign +1) and SUB (sign -1): both inputs to a common scale with 20 bits of headroom, as TFLite does */
MAYBE_UNUSED static void addsub(const i8 *a, int32_t za, int32_t ma, int sa, const i8 *b, int32_t zb, int32_t mb,
                                int sb, int sign, int n, int32_t mo, int so, int32_t zo, i8 *y)
{
    int k;
    for (k = 0; k < n; ++k) {
        int32_t va = mbqm((int32_t)(((uint32_t)((int32_t)a[k] - za)) << 20), ma, sa);
        int32_t vb = mbqm((int32_t)(((uint32_t)((int32_t)b[k] - zb)) << 20), mb, sb);
        y[k] = sat8(mbqm(sign > 0 ? va + vb : va - vb, mo, so) + zo);
    }
}

MAYBE_UNUSED static void mul(const i8 *a, int32_t za, const i8 *b, int32_t zb, int n, int32_t m, int sh, int32_t zo,
                             i8 *y)
{
    int k;
    for (k = 0; k < n; ++k) {
        y[k] = sat8(mbqm(((int32_t)a[k] - za) * ((int32_t)b[k] - zb), m, sh) + zo);
    }
}

MAYBE_UNUSED static void lut8(const i8 *x, const i8 *table, int n, i8 *y)
{
    int k;
    for (k = 0; k < n; ++k) {
        y[k] = table[(unsigned char)x[k]];
    }
}

MAYBE_UNUSED static void copy8(const i8 *x, int n, i8 *y)
{
    int k;
    for (k = 0; k < n; ++k) {
        y[k] = x[k];
    }
}

/* TFLite's int8 SOFTMAX: a float table of exp(-scale * beta * d) for d = max - x, then round(p / out_scale) */
MAYBE_UNUSED static void softmax8(const i8 *x, int n, const float *table, float out_scale, int32_t zo, i8 *y)
{
    int32_t mx = -128;
    float sum = 0.0f, inv;
    int k;
    for (k = 0; k < n; ++k) {
        mx = x[k] > mx ? x[k] : mx;
    }
    for (k = 0; k < n; ++k) {
        sum += table[mx - x[k]];
    }
    inv = 1.0f / (sum * out_scale);
    for (k = 0; k < n; ++k) {
        y[k] = sat8((int32_t)(table[mx - x[k]] * inv + 0.5f) + zo);
    }
}
"""


def render_int8(path: Path, cfg, name: str) -> dict[str, str]:
    """PREFIX.h / PREFIX.c / example for the int8 step model at `path` (its config: normalization, labels)."""
    from .csource import _example, _f, interface

    g = Graph(path)
    p, P = name, name.upper()
    bi = cfg.arch == "bilstm"
    F, N = cfg.n_features, cfg.n_outputs
    mean = np.asarray(cfg.norm_mean or [0.0] * F, np.float32)
    inv_std = (1.0 / np.maximum(np.asarray(cfg.norm_std or [1.0] * F, np.float32), np.float32(1e-12))).astype(
        np.float32
    )
    consts = [
        _floats(f"{p}_norm_mean", mean, static=False),
        _floats(f"{p}_norm_std", np.asarray(cfg.norm_std or [1.0] * F, np.float32), static=False),
        _floats(f"{p}_inv_std", inv_std),
    ]
    classify = cfg.task == "classify"
    tmean = cfg.target_mean or None
    if tmean:
        consts += [_floats(f"{p}_target_mean", cfg.target_mean), _floats(f"{p}_target_std", cfg.target_std)]
    var = {}  # tensor index -> C expression of its int8 buffer
    body: list[str] = []
    decls: list[str] = []
    states = [n for n in g.inputs if n not in ("x", "x_reverse")]
    consumers: dict[int, list[dict]] = {}
    for op in g.ops:
        for i in op["inputs"]:
            consumers.setdefault(i, []).append(op)
    # boundary inputs: the QUANTIZE right after each float input
    xin = {}
    for n, idx in g.inputs.items():
        qops = [op for op in consumers.get(idx, []) if op["op_name"] == "QUANTIZE"]
        if g.dtype(idx) != np.float32 or len(qops) != 1 or len(consumers[idx]) != 1:
            raise InputError(f"{path}: input {n} is not a float tensor quantized once (use the float-I/O int8 model)")
        t = qops[0]["outputs"][0]
        if n in states:
            var[t] = f"s->{n}"
        else:
            var[t] = f"q_{n}"
            decls.append(f"    i8 q_{n}[{g.size(t)}];")
            xin[n] = t
    state_sizes = {n: g.size(g.inputs[n]) for n in states}
    for n, t in xin.items():
        s, z = g.q(t)
        src = "x" if n == "x" else "x_reverse"
        body.append(f"    for (k = 0; k < {F}; ++k) {{")
        body.append(f"        q_{n}[k] = quant8(({src}[k] - {p}_norm_mean[k]) * {p}_inv_std[k], {_f(s)}, {z});")
        body.append("    }")
    out_of = {}  # DEQUANTIZE output tensor -> its int8 source

    def buf(i: int) -> str:
        if i not in var:
            var[i] = f"t{i}"
            decls.append(f"    i8 t{i}[{g.size(i)}];")
        return var[i]

    def const(i: int) -> str:
        if i in var:
            return var[i]
        a = g.consts[i]
        cname = f"{p}_k{i}"
        consts.append(_ints(cname, "int32_t" if a.dtype == np.int32 else "i8", a))
        var[i] = cname
        return cname

    def src(i: int) -> str:
        return const(i) if i in g.consts else var[i]

    for op in g.ops:
        kind, ins, outs = op["op_name"], [i for i in op["inputs"] if i >= 0], op["outputs"]
        if kind == "QUANTIZE":
            if ins[0] in g.inputs.values():
                continue
            raise InputError(f"{path}: an inner QUANTIZE (requantization) has no int8 C form here")
        if kind == "DEQUANTIZE":
            out_of[outs[0]] = ins[0]
            continue
        o = outs[0]
        so, zo = g.q(o)
        if kind == "FULLY_CONNECTED":
            x, w = ins[0], ins[1]
            sx, zx = g.q(x)
            sw, zw = g.q(w)
            if zw != 0:
                raise InputError(f"{path}: FULLY_CONNECTED weights with a zero point have no int8 C form here")
            m, sh = quantize_multiplier(sx * sw / so)
            b = const(ins[2]) if len(ins) > 2 else "0"
            n_out, n_in = g.tensors[w]["shape"]
            body.append(f"    fc({src(x)}, {n_in}, {-zx}, {const(w)}, {b}, {n_out}, {m}, {sh}, {zo}, {buf(o)});")
        elif kind in ("ADD", "SUB"):
            a, b = ins
            (sa, za), (sb, zb) = g.q(a), g.q(b)
            twice = 2.0 * max(sa, sb)
            ma, sha = quantize_multiplier(sa / twice)
            mb, shb = quantize_multiplier(sb / twice)
            mo, sho = quantize_multiplier(twice / ((1 << 20) * so))
            sign = 1 if kind == "ADD" else -1
            n = g.size(o)
            if g.size(a) != n or g.size(b) != n:
                raise InputError(f"{path}: a broadcasting {kind} has no int8 C form here")
            body.append(
                f"    addsub({src(a)}, {za}, {ma}, {sha}, {src(b)}, {zb}, {mb}, {shb}, {sign}, {n}, {mo}, {sho}, "
                f"{zo}, {buf(o)});"
            )
        elif kind == "MUL":
            a, b = ins
            (sa, za), (sb, zb) = g.q(a), g.q(b)
            m, sh = quantize_multiplier(sa * sb / so)
            n = g.size(o)
            if g.size(a) != n or g.size(b) != n:
                raise InputError(f"{path}: a broadcasting MUL has no int8 C form here")
            body.append(f"    mul({src(a)}, {za}, {src(b)}, {zb}, {n}, {m}, {sh}, {zo}, {buf(o)});")
        elif kind in ("LOGISTIC", "TANH"):
            x = ins[0]
            sx, zx = g.q(x)
            fn = (lambda v: 1.0 / (1.0 + np.exp(-v))) if kind == "LOGISTIC" else np.tanh
            tname = f"{p}_lut{o}"
            consts.append(_ints(tname, "i8", lut(sx, zx, so, zo, fn)))
            body.append(f"    lut8({src(x)}, {tname}, {g.size(o)}, {buf(o)});")
        elif kind == "SPLIT":
            x = ins[1]
            part = g.size(outs[0])
            for j, oj in enumerate(outs):
                if g.q(oj) != g.q(x):
                    raise InputError(f"{path}: a requantizing SPLIT has no int8 C form here")
                var[oj] = f"({src(x)} + {j * part})"
        elif kind == "CONCATENATION":  # int8: the converter gives every input the output's quantization
            at = 0
            for x in ins:
                if g.q(x) != (so, zo):
                    raise InputError(f"{path}: a requantizing CONCATENATION has no int8 C form here")
                body.append(f"    copy8({src(x)}, {g.size(x)}, {buf(o)} + {at});")
                at += g.size(x)
        elif kind == "SOFTMAX":
            x = ins[0]
            sx, _ = g.q(x)
            tname = f"{p}_exp{o}"
            vals = np.arange(256, dtype=np.float32)
            consts.append(_floats(tname, np.exp(np.float32(-sx) * vals).astype(np.float32)))
            body.append(f"    softmax8({src(x)}, {g.size(o)}, {tname}, {_f(so)}, {zo}, {buf(o)});")
        if kind not in ("SPLIT",):
            body.append(f"    TRACE({o}, {var[o]}, {g.size(o)});")
    # outputs: y dequantized; each state output requantized into its input's quantization
    post = []
    yq = out_of[g.outputs["y"]]
    sy, zy = g.q(yq)
    post.append(f"    for (k = 0; k < {N}; ++k) {{")
    post.append(f"        y[k] = {_f(sy)} * (float)((int32_t){var[yq]}[k] - {zy});")
    if tmean:
        post.append(f"        y[k] = y[k] * {p}_target_std[k] + {p}_target_mean[k];")
    post.append("    }")
    for n in states:
        so_t = out_of[g.outputs[f"{n}_out"]]
        si_t = next(op["outputs"][0] for op in consumers[g.inputs[n]])
        qf, qt = g.q(so_t), g.q(si_t)
        size = state_sizes[n]
        if qf == qt:
            post.append(f"    copy8({var[so_t]}, {size}, s->{n});")
        else:
            tname = f"{p}_rq_{n}"
            consts.append(_ints(tname, "i8", requant_table(qf, qt)))
            post.append(f"    lut8({var[so_t]}, {tname}, {size}, s->{n});")
    xarg = "const float *x, const float *x_reverse" if bi else "const float *x"
    fields = "\n".join(f"    signed char {n}[{state_sizes[n]}];" for n in states)
    header, labels, window_fn = interface(
        p,
        cfg,
        banner=f"""\
/* {p}.h: {cfg.arch}{" (peephole)" if cfg.peephole else ""} {cfg.layers}x{cfg.units}, {cfg.task}, int8, generated by
 * edgelstm (convert --to c --mode int8) from {path.name}. Raw samples in; {"probabilities" if classify else "values"}
 * out. Integer arithmetic inside (TFLite's int8 kernels); the state is the caller's, int8. No malloc, no globals. */
""",
        state_fields=fields,
        state_size=("BYTES", sum(state_sizes.values())),
    )
    # zero state = the float zero quantized with each state input's parameters
    zeros = []
    for n in states:
        si_t = next(op["outputs"][0] for op in consumers[g.inputs[n]])
        zeros.append(
            f"    for (k = 0; k < {state_sizes[n]}; ++k) {{\n        s->{n}[k] = (signed char){g.q(si_t)[1]};\n    }}"
        )
    source = (
        f"/* {p}.c: generated by edgelstm from {path.name}; int8 weights, int32 accumulators. */\n"
        + f'#include <stdint.h>\n\n#include "{p}.h"\n\n'
        + TRACE_C
        + RUNTIME_C
        + "\n"
        + labels
        + "\n".join(consts)
        + f"""
void {p}_reset({p}_state *s)
{{
    int k;
{chr(10).join(zeros)}
}}

void {p}_step({p}_state *s, {xarg}, float *y)
{{
{chr(10).join(decls)}
    int k;
{chr(10).join(body)}
{chr(10).join(post)}
}}
"""
        + window_fn
    )
    return {f"{p}.h": header, f"{p}.c": source, "example/stream_main.c": _example(p, P, bi)}
