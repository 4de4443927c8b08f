"""issue 12, the device runner: faults survived (non-finite output/state, huge samples), numbers parsed strictly,
options checked, SOURCE anywhere, file: streamed in bounded memory — over real stdin, UDP and files, in subprocesses.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
from conftest import run_module, udp_run

from edgelstm.runtime.sources import Skipper, open_source, parse_text


def strict_json(line: str) -> dict:
    """json.loads that refuses NaN/Infinity (invalid JSON that Python would accept)."""

    def refuse(c):
        raise ValueError(f"invalid JSON constant {c}")

    return json.loads(line, parse_constant=refuse)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Two tiny float step models of test_runtime (LSTM, GRU classifiers), converted once."""
    from conftest import _tiny_model
    from test_runtime import CASES, make_step

    out = tmp_path_factory.mktemp("faults")
    return {k: make_step(_tiny_model, out, k, **CASES[k]) for k in ("lstm", "gru")}


def normal(n: int, seed: int = 3) -> np.ndarray:
    from test_runtime import recording

    return recording(n, seed)


def text_of(rows) -> str:
    return "".join(",".join(f"{v:.7g}" for v in r) + "\n" for r in rows)


# ---- point 1: a huge finite sample, non-finite output or state --------------------------------------------------
def test_huge_sample_is_skipped_by_the_range_policy_and_the_state_carries_on(models):
    """10 normal lines, one 3e38, 50 normal: 60 valid JSON outputs equal to the runner on the 60 good samples."""
    from edgelstm.runtime import Runner

    _, _, path = models["lstm"]
    good = normal(60)
    text = text_of(good[:10]) + "3e38,1,1\n" + text_of(good[10:])
    p = run_module(path, "-", stdin=text)
    assert p.returncode == 0, p.stderr
    outs = [strict_json(ln) for ln in p.stdout.splitlines()]
    assert len(outs) == 60
    runner = Runner()
    runner.open(path)
    ref = np.array([r.values for r in runner.stream(good)])
    assert np.abs(np.array([o["scores"] for o in outs]) - ref).max() <= 1e-5
    assert re.search(r"warning: stdin line 11: value 3e\+38 in column 1 is outside the model's input range", p.stderr)
    assert p.stderr.splitlines()[-1] == "edgelstm run: 60 samples, 1 skipped, 60 outputs (source closed)"


def test_non_finite_output_resets_the_state_and_the_runner_recovers(models):
    """With the range policy off, 3e38 reaches the float GRU (NaN out, and NaN state, for ever before): never
    written, counted, state reset, and the 50 samples after it answered exactly as from a fresh state."""
    from edgelstm.runtime import Runner

    _, _, path = models["gru"]
    good = normal(60)
    text = text_of(good[:10]) + "3e38,1,1\n" + text_of(good[10:])
    p = run_module(path, "-", "--max-deviation", "inf", stdin=text)
    assert p.returncode == 0, p.stderr
    outs = [strict_json(ln) for ln in p.stdout.splitlines()]
    assert [o["t"] for o in outs] == list(range(10)) + list(range(11, 61))
    fresh = Runner()
    fresh.open(path)
    ref = np.array([r.values for r in fresh.stream(good[10:])])
    assert np.abs(np.array([o["scores"] for o in outs[10:]]) - ref).max() <= 1e-5
    assert "warning: sample 10: the model's output or state is not finite (NaN or infinity); state reset" in p.stderr
    assert p.stderr.splitlines()[-1] == (
        "edgelstm run: 61 samples, 0 skipped, 60 outputs, 1 state resets (non-finite output or state) (source closed)"
    )


def test_non_finite_state_is_found_and_reset_within_the_check_interval(models):
    """A state gone to infinity while the output still looks finite (as an LSTM's c at ±inf does) is found at the
    next state check; the samples after the reset are answered as from a fresh state."""
    from edgelstm.runtime import Runner
    from edgelstm.runtime.stream import STATE_CHECK_EVERY

    _, _, path = models["lstm"]
    said = []
    runner = Runner(faults=Skipper(warn=said.append))
    runner.open(path)
    good = normal(3 * STATE_CHECK_EVERY)
    eng = runner._engine

    def samples():
        for i, s in enumerate(good):
            if i == 5:  # the cell state only: h stays finite, so the output does too
                cells = [tin.name for tin, *_ in eng.pairs if tin.name.startswith("c")]
                assert cells
                for name in cells:
                    runner.interp.view(name)[...] = np.inf
            yield s

    out = list(runner.stream(samples()))
    assert runner.faults.count >= 1 and said[0].startswith(f"warning: sample {STATE_CHECK_EVERY}: ")
    assert all(np.isfinite(r.values).all() for r in out)
    after = [r for r in out if r.t > STATE_CHECK_EVERY]
    fresh = Runner()
    fresh.open(path)
    ref = np.array([r.values for r in fresh.stream(good[STATE_CHECK_EVERY + 1 :])])
    assert np.abs(np.array([r.values for r in after]) - ref).max() <= 1e-5


def test_udp_packed_1e38_datagram_is_a_bad_sample_and_the_stream_goes_on(models):
    _, _, path = models["lstm"]
    p = udp_run(path, "--max-samples", "3", datagrams=[b"1,2,3", struct.pack("<3f", 1e38, 1, 1), b"1,2,3", b"4,5,6"])
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    outs = [strict_json(ln) for ln in out.splitlines()]
    assert [o["t"] for o in outs] == [0, 1, 2]
    assert "warning: udp datagram 2: value 1e+38 in column 1 is outside the model's input range" in err
    assert err.strip().splitlines()[-1] == "edgelstm run: 3 samples, 1 skipped, 3 outputs (source closed)"


def test_writer_never_writes_nan_or_infinity():
    import io

    from edgelstm.runtime.output import Writer
    from edgelstm.runtime.stream import ModelInfo, Result

    info = ModelInfo(None, "x", "step", "lstm", "regress", 3, 2, [], [], ["a", "b"], None, None, None, "float", {})
    buf = io.StringIO()
    w = Writer(buf, info)
    w.write(Result(0, np.array([np.nan, np.inf], np.float32)))
    assert strict_json(buf.getvalue()) == {"t": 0, "values": [None, None]}


# ---- point 8: strict numbers --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,why",
    [
        ("1,,2,3", "expected 3 values, got 4"),
        ("1,,2", "empty field 2"),
        ("1;;2", "empty field 2"),
        (",1,2", "empty field 1"),
        ("1\t\t2", "empty field 2"),
        ("1_000,2,3", "non-numeric value '1_000'"),
        ("0x10,2,3", "non-numeric value '0x10'"),
        ("\u0661,2,3", "non-numeric value '\u0661'"),  # an Arabic-Indic digit, which float() accepts
        ("1e,2,3", "non-numeric value '1e'"),
        ("Infinity,2,3", "NaN or infinite value"),
        ("1e39,2,3", "NaN or infinite value"),  # finite as text, infinite as float32
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_parse_text_is_strict(text, why):
    with pytest.raises(ValueError, match=f"^{re.escape(why)}$"):
        parse_text(text, 3)


@pytest.mark.parametrize("text", ["1,2,3", "+1 -2. .3", "1e3;2E-3;3e+0", " 1 , 2 , 3 ", "1  2  3"])
def test_parse_text_plain_numbers(text):
    assert parse_text(text, 3).tolist() == [float(np.float32(v)) for v in re.split(r"[,; ]+", text.strip())]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_parse_text_fuzz():
    """Any text: a float32[3] of finite values whose fields are plain numbers, or a ValueError — nothing else."""
    hyp = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    from edgelstm.runtime.sources import NUMBER, split_fields

    alphabet = st.sampled_from(list("0123456789.,;\t -+eEnaifx_\u0661\ufeff") + ["1e38", "3e38", "nan", "inf"])

    @hyp.settings(max_examples=800, deadline=None, database=None)
    @hyp.given(st.lists(alphabet, max_size=24).map("".join))
    def check(text):
        try:
            v = parse_text(text, 3)
        except ValueError:
            return
        assert v.dtype == np.float32 and v.shape == (3,) and np.isfinite(v).all()
        assert all(NUMBER.fullmatch(f) for f in split_fields(text))

    check()


def test_file_csv_with_an_empty_cell_is_a_bad_line_not_a_shift(tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("ax,ay,az\n1,2,3\n1,,3\n4,5,6\n")
    from edgelstm.runtime.sources import file_samples

    said = []
    got = list(file_samples(csv, 3, Skipper(warn=said.append, every=0)))
    assert [g.tolist() for g in got] == [[1, 2, 3], [4, 5, 6]]
    assert said == [f"warning: {csv} line 3: empty field 2; skipped"]


# ---- options out of range, SOURCE anywhere, one-line errors -------------------------------------------------------
# run's options out of range (12 cases) and bench --count 0/-5: the run/* and bench/* cases of tests/corpus_cases.py


def test_source_before_or_after_options(models):
    _, _, path = models["lstm"]
    text = text_of(normal(10))
    for args in ([path, "--every", "5", "-"], [path, "-", "--every", "5"], ["--every", "5", path, "-"]):
        p = run_module(*args, stdin=text)
        assert p.returncode == 0, (args, p.stderr)
        assert [strict_json(ln)["t"] for ln in p.stdout.splitlines()] == [4, 9]
    from click.testing import CliRunner

    from edgelstm.cli import main

    r = CliRunner().invoke(main, ["run", str(path), "--every", "5", "--format", "csv", "-"], input=text)
    assert r.exit_code == 0, r.output
    assert [ln.split(",")[0] for ln in r.stdout.splitlines()] == ["t", "4", "9"]


def bad_inputs(tmp):
    """(name, source or extra args, expected message fragment) — each must be a one-line error, exit 2."""
    (tmp / "bin.csv").write_bytes(b"\xff\xfe\x00garbage\x81\n\x90\x91,\x92\n")
    np.save(tmp / "obj.npy", np.zeros(1))
    np.savez(tmp / "obj.npz", X=np.array([object(), object()], dtype=object))
    (tmp / "corrupt.npz").write_bytes(b"PK\x03\x04 truncated")
    np.savez(tmp / "shape.npz", X=np.zeros((4, 2), np.float32))
    np.savez(tmp / "noX.npz", Y=np.zeros((4, 3), np.float32))
    (tmp / "wide.csv").write_text("a" * 200_000 + ',"b\n1,2\n')
    (tmp / "empty.csv").write_text("")
    return [
        ("non-utf8", [f"file:{tmp / 'bin.csv'}"], "cannot tell which 3 columns are the model's channels"),
        ("object npz", [f"file:{tmp / 'obj.npz'}"], "obj.npz: 'X' is not a plain numeric array"),
        ("corrupt npz", [f"file:{tmp / 'corrupt.npz'}"], "corrupt.npz: not a readable NPZ file"),
        ("npz shape", [f"file:{tmp / 'shape.npz'}"], "'X' must be a stream [N, 3], got shape [4, 2]"),
        ("npz no X", [f"file:{tmp / 'noX.npz'}"], "noX.npz: no array 'X' in the NPZ"),
        ("huge header", [f"file:{tmp / 'wide.csv'}"], "wide.csv line 1: not a CSV header"),
        ("empty", [f"file:{tmp / 'empty.csv'}"], "empty.csv: empty file"),
        ("missing", [f"file:{tmp / 'nope.csv'}"], "nope.csv: no such file"),
        ("udp 99999", ["udp://127.0.0.1:99999"], "give a port from 0 to 65535"),
        ("udp abc", ["udp://127.0.0.1:abc"], "give a port from 0 to 65535"),
        ("-o missing", ["-o", str(tmp / "no" / "out.json")], "does not exist"),
        ("-o folder", ["-o", str(tmp)], "is a folder, not a file"),
        ("-o /proc", ["-o", "/proc/x/out.json"], "/proc/x/out.json: folder /proc/x does not exist"),
    ]


def test_bad_sources_and_outputs_are_one_line_errors(models, tmp_path):
    _, _, path = models["lstm"]
    for name, args, fragment in bad_inputs(tmp_path):
        p = run_module(path, *args, stdin="1,2,3\n")
        lines = p.stderr.strip().splitlines()
        assert p.returncode == 2, (name, p.stderr)
        assert "Traceback" not in p.stderr, (name, p.stderr)
        assert lines[-1].startswith("Error: ") and fragment in lines[-1], (name, lines[-1])
    assert not (tmp_path / "no").exists()


def test_file_csv_streams_in_bounded_memory(models, tmp_path):
    """Peak RSS of `run file:` over 100,000 samples is within 8 MiB of that over 10,000 (it read the whole file
    into memory before: +0.53 KiB per sample, i.e. +47 MiB here)."""
    _, _, path = models["lstm"]
    rows = normal(1000)
    block = text_of(rows)
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    small.write_text("ax,ay,az\n" + block * 10)
    big.write_text("ax,ay,az\n" + block * 100)
    code = (  # VmHWM, not ru_maxrss: that one keeps the peak of the (TensorFlow-laden) pytest across fork + exec
        "import sys\nfrom edgelstm.runtime.__main__ import main\n"
        "code = main(sys.argv[1:])\n"
        "hwm = [ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM:')][0]\n"
        "print(hwm, file=sys.stderr)\nsys.exit(code)"
    )
    peak = {}
    for f in (small, big):
        p = subprocess.run(
            [sys.executable, "-c", code, str(path), f"file:{f}", "--format", "csv", "-o", "/dev/null"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert p.returncode == 0, p.stderr
        n = 10_000 if f is small else 100_000
        assert f"edgelstm run: {n} samples, 0 skipped, {n} outputs (source closed)" in p.stderr
        peak[f.name] = int(p.stderr.strip().splitlines()[-1])
    assert peak["big.csv"] - peak["small.csv"] < 8 * 1024, peak  # KiB


def test_open_source_udp_port_checked_before_listening():
    from edgelstm.errors import InputError

    for spec in ("udp://127.0.0.1:99999", "udp://127.0.0.1:abc", "udp://127.0.0.1"):
        with pytest.raises(InputError, match="give a port"):
            open_source(spec, 3, Skipper())


@pytest.mark.filterwarnings("ignore:overflow encountered in cast")
def test_file_reader_fuzz(tmp_path):
    """Any bytes as a file: CSV (or NPZ) samples are float32[3] and finite, or the error is one InputError."""
    hyp = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    from edgelstm.errors import InputError
    from edgelstm.runtime.sources import file_samples

    chunks = st.sampled_from(
        [b"ax,ay,az\n", b"1,2,3\n", b"1,,3\n", b"\xef\xbb\xbf", b"\xff\xfe", b'"', b"nan,1,2\n", b"3e38,1,1\n"]
        + [b"a" * 300, b"\n", b",", b"PK\x03\x04", b"1 2 3\r\n", b"# c\n", b"\x00"]
    )
    counter = iter(range(10**9))

    @hyp.settings(max_examples=400, deadline=None, database=None)
    @hyp.given(st.lists(chunks, max_size=12).map(b"".join), st.booleans())
    def check(data, as_npz):
        path = tmp_path / f"f{next(counter)}.{'npz' if as_npz else 'csv'}"
        path.write_bytes(data)
        try:
            rows = list(file_samples(path, 3, Skipper(warn=lambda m: None), ["ax", "ay", "az"]))
        except InputError:
            return
        assert all(r.dtype == np.float32 and r.shape == (3,) and np.isfinite(r).all() for r in rows)

    check()


def test_metadata_reader_fuzz(tmp_path):
    """Any bytes as a .tflite or .onnx: the metadata reader returns a dict or raises one EdgeLSTMError."""
    hyp = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st

    from edgelstm.errors import EdgeLSTMError
    from edgelstm.modelfile.read import read_metadata

    counter = iter(range(10**9))

    @hyp.settings(max_examples=200, deadline=None, database=None)
    @hyp.given(st.binary(max_size=256), st.sampled_from(["tflite", "onnx"]))
    def check(data, ext):
        path = tmp_path / f"m{next(counter)}.{ext}"
        path.write_bytes(b"\x1c\x00\x00\x00TFL3" + data if ext == "tflite" and data[:1] == b"\x00" else data)
        try:
            assert isinstance(read_metadata(path), dict)
        except EdgeLSTMError:
            pass

    check()
