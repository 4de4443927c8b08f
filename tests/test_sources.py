"""Sample sources on real endpoints: a UDP socket on loopback, a pty pair standing in for a serial port."""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from conftest import udp_run

from edgelstm.runtime.sources import BadSample, Skipper, load_file, open_source, parse_text


@pytest.mark.parametrize(
    "text,why",
    [
        ("1,2", "expected 3 values, got 2"),
        ("1,2,3,4", "expected 3 values, got 4"),
        ("1,x,3", "non-numeric value 'x'"),
        ("1,nan,3", "NaN or infinite value"),
        ("1,inf,3", "NaN or infinite value"),
    ],
)
def test_parse_text_rejects_with_reason(text, why):
    with pytest.raises(ValueError, match=why):
        parse_text(text, 3)


@pytest.mark.parametrize("text", ["1,2,3", "1 2 3", "1\t2\t3", "1;2;3", " 1, 2 ,3 \r\n"])
def test_parse_text_separators(text):
    assert parse_text(text, 3).tolist() == [1.0, 2.0, 3.0]


def test_skipper_rate_limits_warnings_and_strict_raises():
    said = []
    s = Skipper(warn=said.append, every=60)
    for i in range(5):
        s(f"line {i}", "bad")
    assert s.count == 5 and said == ["warning: line 0: bad; skipped"]
    with pytest.raises(BadSample, match="^line 9: bad$"):
        Skipper(strict=True)("line 9", "bad")


def test_file_sources_csv_by_channel_name_and_npz(tmp_path):
    csv = tmp_path / "r.csv"
    csv.write_text("az,label,ax,ay\n3,walk,1,2\n6,walk,4,5\n")
    assert load_file(csv, 3, ["ax", "ay", "az"]).tolist() == [[1, 2, 3], [4, 5, 6]]
    npz = tmp_path / "r.npz"
    np.savez(npz, X=np.arange(6, dtype=np.float32).reshape(2, 3))
    skip = Skipper()
    assert np.stack(list(open_source(f"file:{npz}", 3, skip))).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_realtime_file_replay_paces_at_rate(tmp_path):
    npz = tmp_path / "r.npz"
    np.savez(npz, X=np.zeros((6, 2), np.float32))
    t0 = time.monotonic()
    n = len(list(open_source(str(npz), 2, Skipper(), realtime=True, rate=20.0)))
    assert n == 6 and time.monotonic() - t0 >= 5 / 20.0


def consume_in_thread(src, n: int | None = None) -> tuple[threading.Thread, list]:
    """Read samples from `src` in a daemon thread into the returned list, until n of them (or the source ends)."""
    got: list = []

    def consume() -> None:
        for v in src:
            got.append(v.tolist())
            if n is not None and len(got) == n:
                return

    th = threading.Thread(target=consume, daemon=True)
    th.start()
    return th, got


def test_udp_source_text_and_packed_float32_with_bad_datagrams():
    said = []
    skip = Skipper(warn=said.append, every=0)
    ports = []
    src = open_source("udp://127.0.0.1:0", 3, skip, ready=ports.append)
    th, got = consume_in_thread(src, 3)
    while not ports:
        time.sleep(0.01)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = ("127.0.0.1", ports[0])
    for d in [
        b"1,2,3",
        b"x" * 5000,
        b"1,2",
        struct.pack("<3f", 4, 5, 6),
        struct.pack("<3f", 1, float("nan"), 2),
        b"\xff\xfe\x00",
        b"7 8 9",
    ]:
        tx.sendto(d, addr)
    th.join(10)
    tx.close()
    assert got == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert skip.count == 4
    assert said == [
        "warning: udp datagram 2: oversized datagram (5000 bytes > 4096); skipped",
        "warning: udp datagram 3: expected 3 values, got 2; skipped",
        "warning: udp datagram 5: NaN or infinite value; skipped",
        "warning: udp datagram 6: neither text nor packed float32; skipped",
    ]


def _pty():
    master, slave = os.openpty()
    return master, os.ttyname(slave), slave


def test_serial_source_reads_a_pty_and_ends_cleanly_when_it_closes():
    pytest.importorskip("serial")
    master, name, slave = _pty()
    said = []
    skip = Skipper(warn=said.append, every=0)
    src = open_source(f"serial://{name}?baud=115200", 2, skip)
    th, got = consume_in_thread(src)
    time.sleep(0.5)  # pyserial flushes the input buffer when it opens the port
    os.write(master, b"1,2\r\nbad\r\n3 4\r\n")
    time.sleep(0.5)
    os.close(master)
    os.close(slave)
    th.join(10)
    assert not th.is_alive()
    assert got == [[1, 2], [3, 4]]
    assert skip.count == 1


def test_serial_reconnect_reopens_a_port_that_disappears(tmp_path):
    """The device path is a symlink to a pty; the pty goes away and a new one appears under the same path."""
    pytest.importorskip("serial")
    link = tmp_path / "ttyUSB0"
    m1, n1, s1 = _pty()
    link.symlink_to(n1)
    said = []
    from edgelstm.runtime.sources import serial_source

    src = serial_source(str(link), 115200, 2, Skipper(), reconnect=True, max_backoff=0.2, warn=said.append)
    th, got = consume_in_thread(src, 2)
    time.sleep(0.5)  # pyserial flushes the input buffer when it opens the port
    os.write(m1, b"1,2\n")
    time.sleep(0.5)
    os.close(m1)
    os.close(s1)
    link.unlink()
    time.sleep(0.5)
    m2, n2, s2 = _pty()
    link.symlink_to(n2)
    time.sleep(0.5)
    os.write(m2, b"3,4\n")
    th.join(10)
    os.close(m2)
    os.close(s2)
    assert got == [[1, 2], [3, 4]]
    assert any("port lost" in m for m in said) and f"serial {link}: reconnected" in said


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_run_over_udp_flushes_and_exits_0_on_signal(models_dir, sig):
    path = models_dir
    p = udp_run(path, datagrams=[b"1,2,3", struct.pack("<3f", 1, 2, 3), b"1,2", b"4,5,6"])
    lines = [json.loads(p.stdout.readline()) for _ in range(3)]
    p.send_signal(sig)
    out, err = p.communicate(timeout=20)
    assert p.returncode == 0
    assert [d["t"] for d in lines] == [0, 1, 2] and all(len(d["scores"]) == 4 for d in lines)
    assert err.strip().splitlines()[-1] == "edgelstm run: 3 samples, 1 skipped, 3 outputs (stopped by signal)"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    from conftest import _tiny_model
    from test_runtime import make_step

    return make_step(_tiny_model, tmp_path_factory.mktemp("udp"), "lstm", arch="lstm")[2]


def test_run_stdin_with_a_header_and_a_label_column_says_why_nothing_came_out(models_dir, tmp_path):
    """A CSV piped in whole (recording, time, 3 channels, label: 6 values; the model takes 3): every line is
    skipped, so the run ends with the reason and exit 2, not 0 outputs and exit 0; --columns 3-5 picks the
    channels and gives the outputs of the plain 3-value lines."""
    from test_runtime import recording

    raw = recording(6)
    plain = "".join(",".join(f"{v:.6f}" for v in r) + "\n" for r in raw)
    table = "recording,time,ax,ay,az,label\n" + "".join(
        f"r1,{i * 0.02:.2f},{','.join(f'{v:.6f}' for v in r)},walk\n" for i, r in enumerate(raw)
    )

    def run(text: str, *opts: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "edgelstm.runtime", str(models_dir), "-", *opts]
        return subprocess.run(cmd, input=text, capture_output=True, text=True, timeout=60)

    p = run(table)
    assert p.returncode == 2 and p.stdout == ""
    err = p.stderr.strip().splitlines()
    assert err[-2] == "edgelstm run: 0 samples, 7 skipped, 0 outputs (source closed)"
    assert err[-1] == "Error: every line skipped: 6 values, the model takes 3 — use --columns"
    picked, want = run(table, "--columns", "3-5"), run(plain)
    assert picked.returncode == 0 and want.returncode == 0, picked.stderr
    assert picked.stdout == want.stdout and len(want.stdout.splitlines()) == 6
    assert picked.stderr.strip().splitlines()[-1] == "edgelstm run: 6 samples, 1 skipped, 6 outputs (source closed)"
    bad = run(table, "--columns", "3-4")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "Error: --columns '3-4' names 2 columns; the model takes 3 values per sample"


@pytest.mark.parametrize(
    "spec, n, want",
    [("3-8", 6, [2, 3, 4, 5, 6, 7]), ("1,3,5", 3, [0, 2, 4]), ("2-3,7", 3, [1, 2, 6]), ("4", 1, [3])],
)
def test_parse_columns(spec, n, want):
    from edgelstm.runtime.sources import parse_columns

    assert parse_columns(spec, n) == want


@pytest.mark.parametrize("spec", ["0-2", "3-1", "a", "1,,2", ""])
def test_parse_columns_refuses_with_one_line(spec):
    from edgelstm.errors import InputError
    from edgelstm.runtime.sources import parse_columns

    with pytest.raises(InputError, match="give 1-based column numbers or ranges"):
        parse_columns(spec, 3)


def test_columns_with_more_fields_than_the_line_skips_it_with_why():
    assert parse_text("1,2,3,4", 2, columns=[2, 3]).tolist() == [3.0, 4.0]
    with pytest.raises(ValueError, match=r"expected at least 5 values \(--columns\), got 4"):
        parse_text("1,2,3,4", 2, columns=[3, 4])


def test_native_noise_is_dropped_and_real_errors_kept():
    """LiteRT's C++ INFO line (written to fd 2, not through Python) is dropped; any other line still reaches stderr."""
    code = (
        "import os\nfrom edgelstm.runtime.interpreter import NATIVE_NOISE, dropped_native_lines\n"
        "with dropped_native_lines(NATIVE_NOISE):\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\nERROR: a real one\\n')\n"
        "print('done')\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout == "done\n"
    assert p.stderr == "ERROR: a real one\n"
