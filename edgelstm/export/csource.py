"""`convert --to c`: the float step model as a self-contained C99 folder (PREFIX.h, PREFIX.c, example/stream_main.c).

The weights come from the step model (models/step.py `build_step_model`, the one extraction from Keras), so the C
computes exactly the graph the step .tflite holds: the same gate layout, the same GRU reset-after bias split, the
same head. The state is a caller-owned struct; PREFIX.c has no malloc, no mutable globals and includes only
math.h. Normalization (and a regression's target de-normalization) is inside `step`, so it takes raw samples.
A BiLSTM is windowed: `window()` runs both directions over W raw samples from fresh state (docs/microcontrollers.md).
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..capabilities import model_facts, why_not
from ..errors import InputError
from ..models.step import StepModel

KNOWN_CELLS = ("lstm", "peephole", "gru")
# the StepModel parts this writer turns into C; a part added later (a convolutional front-end) is refused by name
# rather than silently left out
KNOWN_PARTS = ("cfg", "cells", "head_kernel", "head_bias", "states")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


@dataclass
class CFolder:
    """What `write_c` wrote: the folder and the prefix of its files and symbols."""

    path: Path
    name: str
    bidirectional: bool


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(f"--name {name!r}: a C identifier is needed (letters, digits, _; not starting with a digit)")
    return name


def refuse_reason(cfg, mode: str) -> str | None:
    """Why this model (or mode) has no C form, from the support table; None when it has one."""
    return why_not(kind="step", format="c", mode=mode, **model_facts(cfg))


def _f(v: float) -> str:
    """A float32 constant that reads back bit for bit (9 significant digits)."""
    v = float(np.float32(v))
    if not np.isfinite(v):
        raise InputError(f"the model holds a non-finite weight ({v}); it cannot be written as C")
    s = f"{v:.9g}"
    if "e" not in s and "." not in s:
        s += ".0"
    return s + "f"


def _array(name: str, values: np.ndarray, static: bool = True) -> str:
    flat = np.asarray(values, np.float32).ravel()
    body = ",\n".join(
        "    " + ", ".join(_f(v) for v in flat[i : i + 8]) for i in range(0, max(len(flat), 1), 8) if len(flat)
    )
    return f"{'static ' if static else ''}const float {name}[{len(flat)}] = {{\n{body}\n}};\n"


def _cell_arrays(p: str, li: int, cell) -> tuple[str, int]:
    """Weights of one cell, transposed so each gate row is contiguous: W[j][i] multiplies input i into row j."""
    u = cell.recurrent.shape[0]
    d = cell.kernel.shape[0]
    out = [f"/* cell {li}: {cell.kind}, {d} inputs, {u} units (state {cell.h}{', ' + cell.c if cell.c else ''}) */\n"]
    out.append(_array(f"{p}_c{li}_wx", cell.kernel.T))
    out.append(_array(f"{p}_c{li}_wh", cell.recurrent.T))
    if cell.kind == "gru":
        b, rb = cell.bias
        out.append(_array(f"{p}_c{li}_b", np.concatenate([b[: 2 * u] + rb[: 2 * u], b[2 * u :]])))
        out.append(_array(f"{p}_c{li}_rb", rb[2 * u :]))
    else:
        out.append(_array(f"{p}_c{li}_b", cell.bias))
    if cell.kind == "peephole":
        out.append(_array(f"{p}_c{li}_p", cell.peephole))
    return "".join(out), u


_HELPERS = """\
static float dot(const float *w, const float *x, int n)
{
    float acc = 0.0f;
    int i;
    for (i = 0; i < n; ++i) {
        acc += w[i] * x[i];
    }
    return acc;
}

static float sigm(float v)
{
    return 1.0f / (1.0f + expf(-v));
}
"""


def _lstm_fn(p: str, li: int, d: int, u: int, peephole: bool) -> str:
    """One LSTM step: gates i, f, g, o (Keras order), then c' = f c + i g, h' = o tanh(c')."""
    if peephole:
        tail = f"""\
        float ig = sigm(z[k] + {p}_c{li}_p[k] * c[k]);
        float fg = sigm(z[{u} + k] + {p}_c{li}_p[{u} + k] * c[k]);
        float c2 = fg * c[k] + ig * tanhf(z[{2 * u} + k]);
        float og = sigm(z[{3 * u} + k] + {p}_c{li}_p[{2 * u} + k] * c2);"""
    else:
        tail = f"""\
        float ig = sigm(z[k]);
        float fg = sigm(z[{u} + k]);
        float og = sigm(z[{3 * u} + k]);
        float c2 = fg * c[k] + ig * tanhf(z[{2 * u} + k]);"""
    return f"""
static void cell{li}(const float *x, float *h, float *c)
{{
    float z[{4 * u}];
    int j, k;
    for (j = 0; j < {4 * u}; ++j) {{
        z[j] = {p}_c{li}_b[j] + dot({p}_c{li}_wx + j * {d}, x, {d}) + dot({p}_c{li}_wh + j * {u}, h, {u});
    }}
    for (k = 0; k < {u}; ++k) {{
{tail}
        c[k] = c2;
        h[k] = og * tanhf(c2);
    }}
}}
"""


def _gru_fn(p: str, li: int, d: int, u: int) -> str:
    """One GRU step (reset_after): z, r from one sigmoid row block; candidate tanh(Wc x + bc + r (Rc h + rbc))."""
    return f"""
static void cell{li}(const float *x, float *h)
{{
    float zr[{2 * u}];
    float hc[{u}];
    int j, k;
    for (j = 0; j < {2 * u}; ++j) {{
        zr[j] = sigm({p}_c{li}_b[j] + dot({p}_c{li}_wx + j * {d}, x, {d}) + dot({p}_c{li}_wh + j * {u}, h, {u}));
    }}
    for (k = 0; k < {u}; ++k) {{
        hc[k] = {p}_c{li}_rb[k] + dot({p}_c{li}_wh + ({2 * u} + k) * {u}, h, {u});
    }}
    for (k = 0; k < {u}; ++k) {{
        float xc = {p}_c{li}_b[{2 * u} + k] + dot({p}_c{li}_wx + ({2 * u} + k) * {d}, x, {d});
        float cand = tanhf(xc + zr[{u} + k] * hc[k]);
        h[k] = cand + zr[k] * (h[k] - cand);
    }}
}}
"""


def render(step: StepModel, name: str) -> dict[str, str]:
    """The folder's files as {relative path: text}."""
    cfg = step.cfg
    p, P = name, name.upper()
    for f in dataclasses.fields(step):
        value = getattr(step, f.name)
        if f.name not in KNOWN_PARTS and value is not None and not (hasattr(value, "__len__") and len(value) == 0):
            raise InputError(
                f"the step model's {f.name!r} part has no C form in this edgelstm (it writes cells + head)"
            )
    for cell in step.cells:
        if cell.kind not in KNOWN_CELLS:
            raise InputError(f"a {cell.kind!r} layer has no C form in this edgelstm (known: {', '.join(KNOWN_CELLS)})")
    bi = cfg.arch == "bilstm"
    F, N = cfg.n_features, cfg.n_outputs
    mean = np.asarray(cfg.norm_mean or [0.0] * F, np.float32)
    std = np.asarray(cfg.norm_std or [1.0] * F, np.float32)
    inv_std = (1.0 / np.maximum(std, np.float32(1e-12))).astype(np.float32)  # as the runner computes it
    tmean = np.asarray(cfg.target_mean, np.float32) if cfg.target_mean else None
    tstd = np.asarray(cfg.target_std, np.float32) if cfg.target_mean else None
    classify = cfg.task == "classify"

    consts = [_array(f"{p}_norm_mean", mean, static=False), _array(f"{p}_norm_std", std, static=False)]
    consts.append(_array(f"{p}_inv_std", inv_std))
    if tmean is not None:
        consts += [_array(f"{p}_target_mean", tmean), _array(f"{p}_target_std", tstd)]
    fns = [_HELPERS]
    calls = []
    for li, cell in enumerate(step.cells):
        text, u = _cell_arrays(p, li, cell)
        consts.append(text)
        d = cell.kernel.shape[0]
        if cell.kind == "gru":
            fns.append(_gru_fn(p, li, d, u))
        else:
            fns.append(_lstm_fn(p, li, d, u, cell.kind == "peephole"))
        if bi:
            src = "xn" if cell.x == "x" else "xrn"
        else:
            src = "xn" if li == 0 else f"s->{step.cells[li - 1].h}"
        args = f"{src}, s->{cell.h}" + (f", s->{cell.c}" if cell.c else "")
        calls.append(f"    cell{li}({args});")
    head_in = step.head_kernel.shape[0]
    consts.append("/* head */\n" + _array(f"{p}_head_w", step.head_kernel.T) + _array(f"{p}_head_b", step.head_bias))
    if bi:
        fw, bw = step.cells[0].h, step.cells[1].h
        u = cfg.units
        if cfg.merge == "concat":
            body = f"        m[k] = s->{fw}[k];\n        m[{u} + k] = s->{bw}[k];"
            feat = f"    for (k = 0; k < {u}; ++k) {{\n{body}\n    }}"
        else:
            feat = f"    for (k = 0; k < {u}; ++k) {{\n        m[k] = s->{fw}[k] + s->{bw}[k];\n    }}"
        head_src = "m"
    else:
        feat, head_src = "", f"s->{step.cells[-1].h}"
    post = []
    if classify:
        post.append(f"""\
    mx = y[0];
    for (j = 1; j < {N}; ++j) {{
        if (y[j] > mx) {{
            mx = y[j];
        }}
    }}
    sum = 0.0f;
    for (j = 0; j < {N}; ++j) {{
        y[j] = expf(y[j] - mx);
        sum += y[j];
    }}
    for (j = 0; j < {N}; ++j) {{
        y[j] = y[j] / sum;
    }}""")
    if tmean is not None:
        post.append(f"""\
    for (j = 0; j < {N}; ++j) {{
        y[j] = y[j] * {p}_target_std[j] + {p}_target_mean[j];
    }}""")
    norm = f"""\
    for (k = 0; k < {F}; ++k) {{
        xn[k] = (x[k] - {p}_norm_mean[k]) * {p}_inv_std[k];{
        '''
        xrn[k] = (x_reverse[k] - '''
        + p
        + '''_norm_mean[k]) * '''
        + p
        + '''_inv_std[k];'''
        if bi
        else ""
    }
    }}"""
    decl = [f"    float xn[{F}];"] + ([f"    float xrn[{F}];", f"    float m[{head_in}];"] if bi else [])
    decl += ["    int j, k;"] + (["    float mx, sum;"] if classify else [])
    xarg = "const float *x, const float *x_reverse" if bi else "const float *x"
    state_fields = "\n".join(f"    float {n}[{u}];" for n, u in step.states)
    n_state = sum(u for _, u in step.states)
    reset = f"""\
void {p}_reset({p}_state *s)
{{
    float *f = (float *)s;
    int i;
    for (i = 0; i < {n_state}; ++i) {{
        f[i] = 0.0f;
    }}
}}
"""
    step_fn = f"""\
void {p}_step({p}_state *s, {xarg}, float *y)
{{
{chr(10).join(decl)}
{norm}
{chr(10).join(calls)}
{feat}
    for (j = 0; j < {N}; ++j) {{
        y[j] = {p}_head_b[j] + dot({p}_head_w + j * {head_in}, {head_src}, {head_in});
    }}
{chr(10).join(post)}
}}
"""
    header, labels, window_fn = interface(
        p,
        cfg,
        banner=f"""\
/* {p}.h: {cfg.arch}{" (peephole)" if cfg.peephole else ""} {cfg.layers}x{cfg.units}, {cfg.task}, generated by edgelstm
 * (convert --to c --mode float). Raw samples in; {"probabilities" if classify else "values"} out.
 * The state is the caller's: {p}_reset() it, then {p}_step() one sample at a time. No malloc, no globals. */
""",
        state_fields=state_fields,
        state_size=("FLOATS", n_state),
    )
    source = (
        f"/* {p}.c: generated by edgelstm; weights of the trained model, float32. */\n"
        + f'#include <math.h>\n\n#include "{p}.h"\n\n'
        + labels
        + "\n".join(consts)
        + "\n"
        + "".join(fns)
        + "\n"
        + reset
        + "\n"
        + step_fn
        + window_fn
    )
    return {f"{p}.h": header, f"{p}.c": source, "example/stream_main.c": _example(p, P, bi)}


def interface(p: str, cfg, banner: str, state_fields: str, state_size: tuple[str, int]) -> tuple[str, str, str]:
    """(PREFIX.h, the class names' definition, PREFIX_window()): the interface the float C and the int8 C
    (cint8.py) share, written once so a caller's code builds against either."""
    P, F, N = p.upper(), cfg.n_features, cfg.n_outputs
    bi, classify = cfg.arch == "bilstm", cfg.task == "classify"
    xarg = "const float *x, const float *x_reverse" if bi else "const float *x"
    labels, width = "", 0
    if classify and cfg.labels:
        quoted = ", ".join('"' + str(lbl).replace("\\", "\\\\").replace('"', '\\"') + '"' for lbl in cfg.labels)
        width = max(len(str(lbl).encode()) for lbl in cfg.labels) + 1  # a char matrix: .rodata, no relocations
        labels = f"const char {p}_labels[{N}][{width}] = {{{quoted}}};\n"
    window = int(cfg.window) if bi else 0
    window_decl = window_fn = ""
    if bi:
        window_decl = (
            f"/* a window of {window} raw samples win[{window}][{F}] -> y[{N}], from fresh state (s: scratch) */\n"
            f"void {p}_window({p}_state *s, const float *win, float *y);"
        )
        window_fn = f"""
void {p}_window({p}_state *s, const float *win, float *y)
{{
    int t;
    {p}_reset(s);
    for (t = 0; t < {P}_WINDOW; ++t) {{
        {p}_step(s, win + t * {F}, win + ({P}_WINDOW - 1 - t) * {F}, y);
    }}
}}
"""
    header = f"""\
{banner}#ifndef {P}_H
#define {P}_H

#ifdef __cplusplus
extern "C" {{
#endif

#define {P}_N_FEATURES {F}
#define {P}_N_OUTPUTS {N}
#define {P}_CLASSIFY {1 if classify else 0}
#define {P}_BIDIRECTIONAL {1 if bi else 0}
#define {P}_WINDOW {window} /* samples per window of a BiLSTM (0: streams sample by sample) */
#define {P}_HOP {int(cfg.stride or 1)} /* samples between windows */
#define {P}_STATE_{state_size[0]} {state_size[1]}

typedef struct {{
{state_fields}
}} {p}_state;

extern const float {p}_norm_mean[{F}];
extern const float {p}_norm_std[{F}];
{f"extern const char {p}_labels[{N}][{width}]; /* class names, NUL-terminated */" if labels else ""}

/* zero state: the start of a stream (or of a window) */
void {p}_reset({p}_state *s);
/* one raw sample x[{F}]{" and the window sample at T-1-t, x_reverse" if bi else ""} -> y[{N}] */
void {p}_step({p}_state *s, {xarg}, float *y);
{window_decl}

#ifdef __cplusplus
}}
#endif

#endif /* {P}_H */
"""
    return header, labels, window_fn


def _example(p: str, P: str, bi: bool) -> str:
    if bi:
        run = f"""\
        pos = (int)(n % {P}_WINDOW);
        for (k = 0; k < {P}_N_FEATURES; ++k) {{
            ring[pos][k] = x[k];
            ring[pos + {P}_WINDOW][k] = x[k];
        }}
        ++n;
        ++filled;
        if (filled >= {P}_WINDOW && (filled - {P}_WINDOW) % {P}_HOP == 0) {{
            /* the last WINDOW samples are ring[pos + 1 .. pos + WINDOW] */
            {p}_window(&st, &ring[pos + 1][0], y);
            print_row(y);
        }}"""
        ring = f"    static float ring[2 * {P}_WINDOW][{P}_N_FEATURES];\n    long filled = 0;\n    int pos, k;\n"
    else:
        run = f"""\
        {p}_step(&st, x, y);
        print_row(y);"""
        ring = ""
    count = "\n    long n = 0;" if bi else ""
    return f"""\
/* stream_main.c: one sample per stdin line (comma, space or tab separated), one line of outputs per
 * {"window (every " + P + "_HOP samples once " + P + "_WINDOW are in)" if bi else "sample"}.
 * Build (in the folder above): cc -std=c99 -O2 *.c example/stream_main.c -lm */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../{p}.h"

#ifndef STREAM_FMT
#define STREAM_FMT "%.6g"
#endif

static void print_row(const float *y)
{{
    int j;
    for (j = 0; j < {P}_N_OUTPUTS; ++j) {{
        printf(j ? " " STREAM_FMT : STREAM_FMT, (double)y[j]);
    }}
    putchar('\\n');
}}

int main(void)
{{
    static char line[65536];
    {p}_state st;
    float x[{P}_N_FEATURES];
    float y[{P}_N_OUTPUTS];
    long lineno = 0;{count}
{ring}
    {p}_reset(&st);
    while (fgets(line, sizeof line, stdin)) {{
        char *tok;
        int got = 0;
        ++lineno;
        if (!strchr(line, '\\n') && !feof(stdin)) {{
            fprintf(stderr, "line %ld: longer than %d characters\\n", lineno, (int)sizeof line - 1);
            return 2;
        }}
        for (tok = strtok(line, ", \\t\\r\\n"); tok; tok = strtok(NULL, ", \\t\\r\\n")) {{
            char *end;
            double v = strtod(tok, &end);
            if (*end != '\\0' || got >= {P}_N_FEATURES) {{
                fprintf(stderr, "line %ld: expected {{%d}} numbers\\n", lineno, {P}_N_FEATURES);
                return 2;
            }}
            x[got++] = (float)v;
        }}
        if (got == 0) {{
            continue;
        }}
        if (got != {P}_N_FEATURES) {{
            fprintf(stderr, "line %ld: expected %d numbers, got %d\\n", lineno, {P}_N_FEATURES, got);
            return 2;
        }}
{run}
    }}
    return 0;
}}
""".replace("{%d}", "%d")


def write_folder(files: dict[str, str], out: Path) -> None:
    """All files into a temporary sibling, renamed into place only when complete."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text)
        if out.exists():
            out.rmdir()  # empty (checked before)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
