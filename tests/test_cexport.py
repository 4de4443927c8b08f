"""`convert --to c`: the generated C99 against the float step .tflite (ai-edge-litert), built with gcc's strict flags
and with arm-none-eabi-gcc for a Cortex-M4/M7 run under qemu-system-arm; `check` measuring flash and RAM."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import invoke, one_line_error

pytestmark = pytest.mark.slow  # TensorFlow converter, compilers, qemu

KINDS = {
    "lstm": dict(arch="lstm"),
    "peephole": dict(arch="lstm", peephole=True),
    "gru": dict(arch="gru"),
    "lstm2-regress": dict(arch="lstm", layers=2, task="regress", n_outputs=2),  # target de-normalization too
    "gru2": dict(arch="gru", layers=2),
    "bilstm": dict(arch="bilstm"),
    "bilstm-sum": dict(arch="bilstm", merge="sum"),
}
MEAN, STD = [0.5, -1.0, 2.0], [2.0, 0.5, 1.5]  # a normalization that is not the identity: it is inside the C
N_SAMPLES = 3000

ARM = shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")
needs_arm = pytest.mark.skipif(
    not ARM, reason="apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
)


@pytest.fixture(scope="module")
def c_models(tiny_model, tmp_path_factory) -> dict[str, tuple[Path, Path, object]]:
    """kind -> (C folder written by the CLI, float step .tflite of the same weights, cfg)."""
    from edgelstm.export.tflite import step_tflite
    from edgelstm.models.step import build_step_model

    out = {}
    for i, (kind, kw) in enumerate(KINDS.items()):
        kw = dict(kw)
        cfg, model = tiny_model(seed=i, layers=kw.pop("layers", 1), **kw)
        cfg.norm_mean, cfg.norm_std = MEAN, STD
        if cfg.task != "classify":
            cfg.target_mean, cfg.target_std = [1.0, -2.0], [3.0, 0.25]
        d = tmp_path_factory.mktemp(f"c-{kind}")
        cfg.save(d)
        model.save(d / "model.keras")
        r = invoke("convert", d, "--to", "c", "--name", "net", "-o", d / "c")
        assert r.exit_code == 0, r.output
        tfl = d / "step.tflite"
        tfl.write_bytes(step_tflite(build_step_model(cfg, model), "float"))
        out[kind] = (d / "c", tfl, cfg)
    return out


def raw_stream(cfg, n: int = N_SAMPLES, seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.normal(0, 1.5, (n, cfg.n_features)) * cfg.norm_std + cfg.norm_mean).astype(np.float32)


def litert_stream(tfl: Path, X: np.ndarray) -> np.ndarray:
    """The float step .tflite stepped by the runner (ai-edge-litert): one output per sample, or per BiLSTM window."""
    from edgelstm.runtime import Runner

    r = Runner(runtime="litert")
    r.open(tfl)
    return np.array([res.values for res in r.stream(X)], np.float64)


@pytest.mark.parametrize("kind", list(KINDS))
def test_float_c_streams_like_the_float_step_tflite(c_models, kind, tmp_path):
    """3000 raw samples through the example binary (gcc -std=c99 -Wall -Wextra -Werror -O2) and through the step
    .tflite in LiteRT: every output within 1e-5 (a BiLSTM: every window of 20 every 10 samples)."""
    from edgelstm.targets.mcu import build_host, stream_host

    folder, tfl, cfg = c_models[kind]
    X = raw_stream(cfg)
    binary = build_host(folder, tmp_path / "stream", defines=('STREAM_FMT="%.9g"',))
    got = stream_host(binary, X)
    want = litert_stream(tfl, X)
    expected_rows = N_SAMPLES if cfg.arch != "bilstm" else (N_SAMPLES - cfg.window) // cfg.stride + 1
    assert got.shape == want.shape == (expected_rows, cfg.n_outputs)
    assert np.abs(got - want).max() <= 1e-5
    if cfg.task == "classify":
        assert np.allclose(got.sum(axis=1), 1.0, atol=1e-5)


def test_the_documented_build_line_works_and_prints_6_digits(c_models, tmp_path):
    """The header's build line, as a user types it in the folder; the default %.6g output agrees to 6 digits and a
    malformed line stops the stream with a one-line message naming the line."""
    folder, tfl, cfg = c_models["lstm"]
    work = tmp_path / "c"
    shutil.copytree(folder, work)
    subprocess.run("cc -std=c99 -O2 *.c example/*.c -lm -o stream", shell=True, cwd=work, check=True)
    X = raw_stream(cfg, 200)
    text = "\n".join(" \t".join(f"{v:.9g}" for v in row) for row in X) + "\n"  # space/tab separated this time
    res = subprocess.run([work / "stream"], input=text, capture_output=True, text=True, check=True)
    got = np.array([[float(v) for v in line.split(" ")] for line in res.stdout.splitlines()])
    assert np.allclose(got, litert_stream(tfl, X), rtol=1e-5, atol=1e-6)
    bad = subprocess.run([work / "stream"], input="1,2,3\n1,2\n", capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr == "line 2: expected 3 numbers, got 2\n"
    assert len(bad.stdout.splitlines()) == 1


def test_generated_c_uses_only_math_h_and_has_no_mutable_globals(c_models, tmp_path):
    """Only math.h is included, and the object gcc makes has no writable symbol (nm: no D/B/C): the state is the
    caller's."""
    for kind, (folder, _, _) in c_models.items():
        src = (folder / "net.c").read_text()
        includes = [line for line in src.splitlines() if line.startswith("#include")]
        assert includes == ["#include <math.h>", '#include "net.h"']
        assert "malloc" not in src
        obj = tmp_path / f"{kind}.o"
        subprocess.run(["gcc", "-std=c99", "-O2", "-fno-common", "-c", folder / "net.c", "-o", obj], check=True)
        syms = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout.split("\n")
        kinds = {line.split()[-2] for line in syms if len(line.split()) >= 2}
        assert not kinds & set("DdBbCG"), (kind, kinds)
        assert {"net_step", "net_reset", "net_norm_mean"} <= {line.split()[-1] for line in syms if line.strip()}


@needs_arm
@pytest.mark.parametrize("kind", ["lstm", "peephole", "gru", "lstm2-regress", "bilstm"])
def test_cortex_m4_under_qemu_equals_the_host_build_and_sizes_are_measured(c_models, kind):
    """`check FOLDER --target cortex-m4`: the harness cross-built for the M4F (hard float) runs under qemu
    mps2-an386 and prints what the host build prints (≤ 1e-6: newlib's and glibc's expf/tanhf differ in the last
    place); flash holds at least the weights, RAM at least the state struct."""
    from edgelstm.targets.mcu import check_c
    from edgelstm.targets.profile import load_target

    folder, _, cfg = c_models[kind]
    r = invoke("check", folder, "--target", "cortex-m4")
    assert r.exit_code == 0, r.output
    assert f"{folder}: fits target cortex-m4" in r.output
    res = check_c(folder, load_target("cortex-m4"), n_steps=50)
    assert res.max_abs_diff is not None and res.max_abs_diff <= 1e-6
    n_weights = sum(
        w.size for w in __import__("tf_keras").models.load_model(folder.parent / "model.keras").get_weights()
    )
    s = res.sizes
    assert 4 * n_weights <= s.flash <= 4 * n_weights + 4096, (n_weights, s)
    units = cfg.units * cfg.layers * (2 if cfg.arch == "bilstm" else 1) * (1 if cfg.arch == "gru" else 2)
    assert s.state == 4 * units
    assert s.data == 0 and s.bss == 0 and 0 < s.stack < 1024
    # SysTick under qemu -icount counts instructions: at least one per multiply-accumulate of the gates and head
    from edgelstm.models.step import build_step_model

    step = build_step_model(cfg, __import__("tf_keras").models.load_model(folder.parent / "model.keras"))
    macs = sum(c.kernel.size + c.recurrent.size for c in step.cells) + step.head_kernel.size
    per = macs * (cfg.window if cfg.arch == "bilstm" else 1)
    assert per <= res.instructions <= 40 * per, (per, res.instructions)


@needs_arm
def test_cortex_m7_under_qemu_and_a_budget_that_does_not_fit(c_models, tmp_path):
    folder, _, _ = c_models["gru"]
    r = invoke("check", folder, "--target", "cortex-m7")
    assert r.exit_code == 0 and "qemu mps2-an500: 200 steps, max |target - host| " in r.output, r.output
    assert re.search(r"[0-9,]+ instructions per step", r.output), r.output
    from edgelstm.resources import data_dir

    tight = tmp_path / "tiny-m4.toml"
    text = (data_dir("targets") / "cortex-m4.toml").read_text()
    tight.write_text(
        text.replace('name = "cortex-m4"', 'name = "tiny-m4"').replace("flash_bytes = 131072", "flash_bytes = 1000")
    )
    r = invoke("check", folder, "--target", tight)
    assert r.exit_code == 1
    assert "exceeds tiny-m4's budget of 1000 B" in r.output and "1 violation(s) of target tiny-m4" in r.output


def test_convert_to_c_refuses_with_one_line_and_writes_nothing(tiny_model_dir, tmp_path):
    stacked = tiny_model_dir(arch="bilstm", layers=2)
    out = tmp_path / "c"
    err = one_line_error(invoke("convert", stacked, "--to", "c", "-o", out))
    assert err.startswith("Error: a stacked BiLSTM has no step model: its second layer needs the whole first-layer")
    assert not out.exists()
    lstm = tiny_model_dir(arch="lstm", layers=1)
    err = one_line_error(invoke("convert", lstm, "--to", "c", "--name", "9lives", "-o", out))
    assert err == "Error: --name '9lives': a C identifier is needed (letters, digits, _; not starting with a digit)"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    err = one_line_error(invoke("convert", lstm, "--to", "c", "-o", out))
    assert err == f"Error: {out}: exists and is not an empty folder; choose another -o"
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]


def quantize_int8(d: Path, cfg) -> Path:
    """`quantize --mode int8 --kind step` (float I/O) calibrated on 8 raw windows, into the model directory."""
    npz = d / "calib.npz"
    np.savez(npz, X=raw_stream(cfg, 8 * cfg.window, seed=3).reshape(8, cfg.window, cfg.n_features))
    r = invoke("quantize", d, "--mode", "int8", "--kind", "step", "--calibration", npz, "--no-report", "-o", d)
    assert r.exit_code == 0, r.output
    return d / "step.int8.tflite"


@pytest.fixture(scope="module")
def int8_gru(c_models) -> Path:
    """The GRU's int8 step model (float I/O), written into its model directory."""
    folder, _, cfg = c_models["gru"]
    return quantize_int8(folder.parent, cfg)


@pytest.fixture(scope="module")
def int8_models(c_models, int8_gru) -> dict[str, tuple[Path, Path, object]]:
    """kind -> (int8 C folder written by the CLI, int8 step .tflite, cfg)."""
    out = {}
    for kind in ("lstm", "gru", "bilstm"):
        folder, _, cfg = c_models[kind]
        d = folder.parent
        q = int8_gru if kind == "gru" else quantize_int8(d, cfg)
        r = invoke("convert", d, "--to", "c", "--mode", "int8", "--name", "net", "-o", d / "c8")
        assert r.exit_code == 0, r.output
        out[kind] = (d / "c8", q, cfg)
    return out


def tflm_stream(q: Path, cfg, X: np.ndarray) -> np.ndarray:
    """The int8 step .tflite in TFLite Micro's interpreter, driven by the runner's step engine over raw samples
    (a BiLSTM: the same windows the example runs)."""
    from edgelstm.modelfile.read import read_metadata
    from edgelstm.runtime.engine import bind, run_windows
    from edgelstm.targets.tflm import TFLMInterpreter, arena_bytes

    blob, meta = q.read_bytes(), read_metadata(q)
    mean = np.asarray(cfg.norm_mean, np.float32)
    inv = (1.0 / np.asarray(cfg.norm_std, np.float32)).astype(np.float32)
    eng = bind(TFLMInterpreter(blob, arena_size=arena_bytes(blob)), meta["inputs"], meta["outputs"], mean, inv)
    if cfg.arch == "bilstm":
        W, H = cfg.window, cfg.stride
        wins = np.stack([X[i : i + W] for i in range(0, len(X) - W + 1, H)])
        return run_windows(eng, wins).astype(np.float64)  # the engine normalizes (bind: mean, inv_std)
    eng.reset_state()
    step = eng.make_step()
    return np.array([step(x).copy() for x in X], np.float64)


@pytest.mark.parametrize("kind", ["lstm", "gru", "bilstm"])
def test_int8_c_reproduces_tflite_micro_and_stays_near_litert(int8_models, kind, tmp_path):
    """3000 raw samples: the integer C (gcc strict flags) against the int8 step .tflite in TFLite Micro (TFLite's
    reference kernels): the same bytes, at most one output step apart in 0.1 % of the scores; against LiteRT's
    builtin CPU kernels, whose FULLY_CONNECTED rounds differently (docs/microcontrollers.md): argmax agreement
    ≥ 98.5 % and scores within 8 steps of 1/256."""
    from edgelstm.runtime import Runner
    from edgelstm.targets.mcu import build_host, stream_host

    folder, q, cfg = int8_models[kind]
    src = (folder / "net.c").read_text()
    lines = src.splitlines()
    includes = [ln for ln in lines if ln.startswith("#include")]
    assert includes == ["#include <stdint.h>", '#include "net.h"', "#include <stdio.h>"]
    assert lines[lines.index("#include <stdio.h>") - 1].startswith("#ifdef EDGELSTM_TRACE")  # a debugging aid only
    X = raw_stream(cfg)
    got = stream_host(build_host(folder, tmp_path / "s8", defines=('STREAM_FMT="%.9g"',)), X)
    micro = tflm_stream(q, cfg, X)
    assert got.shape == micro.shape
    d = np.abs(got - micro)
    assert d.max() <= 1 / 256 + 1e-6 and (d > 1e-6).mean() <= 1e-3, (d.max(), (d > 1e-6).mean())
    r = Runner(runtime="litert", no_default_delegates=True)
    r.open(q)
    lite = np.array([res.values for res in r.stream(X)], np.float64)
    agree = (got.argmax(1) == lite.argmax(1)).mean()
    print(f"{kind}: int8 C vs TFLM max {d.max():.4f}; vs LiteRT max {np.abs(got - lite).max():.4f}, argmax {agree:.4f}")
    assert agree >= 0.985 and np.abs(got - lite).max() <= 8 / 256 + 1e-6


@needs_arm
def test_int8_c_on_cortex_m4_equals_the_host_bit_for_bit(int8_models):
    from edgelstm.targets.mcu import check_c
    from edgelstm.targets.profile import load_target

    for kind in ("gru", "bilstm"):
        folder, _, cfg = int8_models[kind]
        res = check_c(folder, load_target("cortex-m4"), n_steps=40)
        assert res.max_abs_diff == 0.0 and not res.violations, (kind, res.lines)
        assert res.sizes.state == cfg.units * (2 if kind == "bilstm" else 1) * (1 if kind == "gru" else 2)


def test_c_array_header_holds_the_tflite_byte_for_byte_aligned_with_its_measured_arena(c_models, tmp_path):
    """`convert --to c-array`: a program built with the strict flags prints the array back; it equals the file and
    sits on a 16-byte boundary; the arena in the header is the smallest (16-byte steps) TFLM runs the model in."""
    from edgelstm.targets.tflm import _runs_in

    _, tfl, _ = c_models["lstm"]
    r = invoke("convert", tfl, "--to", "c-array", "--name", "lstm_model", "-o", tmp_path / "arr")
    assert r.exit_code == 0, r.output
    header = tmp_path / "arr" / "lstm_model.h"
    text = header.read_text()
    arena = int(re.search(r"#define LSTM_MODEL_ARENA_BYTES (\d+)u", text).group(1))
    assert f"TFLite Micro arena: {arena} B (measured)" in r.output
    blob = tfl.read_bytes()
    assert _runs_in(blob, arena) and not _runs_in(blob, arena - 16)
    main = tmp_path / "dump.c"
    main.write_text(
        '#include <stdio.h>\n#include <stdint.h>\n#include "lstm_model.h"\n'
        "int main(void) {\n    if ((uintptr_t)lstm_model_tflite % 16u) { return 3; }\n"
        "    fwrite(lstm_model_tflite, 1, LSTM_MODEL_TFLITE_LEN, stdout);\n    return 0;\n}\n"
    )
    exe = tmp_path / "dump"
    subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", f"-I{header.parent}", main, "-o", exe], check=True
    )
    assert subprocess.run([exe], capture_output=True, check=True).stdout == blob
    if ARM:
        flags = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-std=c99", "-Wall", "-Wextra"]
        cmd = ["arm-none-eabi-gcc", *flags, "-Werror", "-O2", f"-I{header.parent}", "-c", main, "-o", tmp_path / "d.o"]
        subprocess.run(cmd, check=True)


@pytest.mark.parametrize("which", ["float lstm", "int8 gru", "float bilstm"])
def test_check_tflite_on_cortex_m4_runs_tflite_micro_like_litert(which, c_models, int8_gru):
    """`check X.tflite --target cortex-m4`: the step model run in TFLite Micro's interpreter through the runner's
    step engine matches LiteRT (float: ≤ 1e-6; int8: TFLM's reference int8 kernels drift from LiteRT's by up to
    5 output steps of 1/256 over a window, measured; within 8 here, argmax agreement ≥ 99 %)."""
    mode, kind = which.split()
    path = int8_gru if mode == "int8" else c_models[kind][1]
    r = invoke("check", path, "--target", "cortex-m4")
    assert r.exit_code == 0, r.output
    m = re.search(
        r"TFLite Micro: arena (\d+) B \(measured\); 20 windows of 20 steps, max \|TFLM - LiteRT\| (\S+), "
        r"argmax agreement ([\d.]+) %",
        r.output,
    )
    assert m, r.output
    arena, diff, agree = int(m.group(1)), float(m.group(2).rstrip(",")), float(m.group(3))
    assert 1000 < arena < 32768
    assert diff <= (1e-6 if mode == "float" else 8 / 256) and agree >= 99.0, r.output


def test_convert_c_array_int8_without_the_quantized_file_says_what_to_run(tiny_model_dir, tmp_path):
    d = tiny_model_dir(arch="lstm", layers=1)
    err = one_line_error(invoke("convert", d, "--to", "c-array", "--mode", "int8", "-o", tmp_path / "a"))
    assert err == f"Error: {d}: no step.int8.tflite; make it first: edgelstm quantize {d} --mode int8"
    assert not (tmp_path / "a").exists()


def test_a_step_model_part_or_layer_kind_without_a_c_form_is_refused_by_name(tiny_model):
    """A part the C writer does not know (the convolutional front-end being added to the step model, say) is
    refused by name, never silently left out of the C; so is an unknown cell kind."""
    import dataclasses

    from edgelstm.errors import InputError
    from edgelstm.export.csource import render
    from edgelstm.models.step import StepModel, build_step_model

    cfg, model = tiny_model(arch="gru", layers=1)
    step = build_step_model(cfg, model)
    assert set(render(step, "m")) == {"m.h", "m.c", "example/stream_main.c"}
    ext = dataclasses.make_dataclass("WithFrontEnd", [("frontend", object, None)], bases=(StepModel,))
    with_front = ext(step.cfg, step.cells, step.head_kernel, step.head_bias, step.states, frontend=[np.ones(3)])
    with pytest.raises(InputError, match=r"^the step model's 'frontend' part has no C form in this edgelstm"):
        render(with_front, "m")
    step.cells[0].kind = "conv1d"
    with pytest.raises(InputError, match=r"^a 'conv1d' layer has no C form in this edgelstm \(known: lstm, peephole"):
        render(step, "m")
