"""Where samples come from: stdin, file:PATH, udp://HOST:PORT, serial:///dev/ttyX?baud=N.

Every source yields one float32 array of `n_features` values per sample. Bad input (malformed, wrong count,
NaN, non-numeric, oversized datagram) is counted and skipped with a rate-limited warning, or fatal with strict.
"""

from __future__ import annotations

import csv
import math
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np

from ..errors import BadSample, InputError

MAX_DATAGRAM = 4096
_SEPARATORS = str.maketrans({",": " ", ";": " ", "\t": " "})


class Skipper:
    """Counts bad samples and warns at most once per `every` seconds (the rest are summed into the next warning)."""

    def __init__(self, strict: bool = False, warn: Callable[[str], None] | None = None, every: float = 1.0) -> None:
        self.strict = strict
        self.count = 0
        self._warn = warn or (lambda m: print(m, file=sys.stderr, flush=True))
        self._every = every
        self._last = -math.inf
        self._quiet = 0

    def __call__(self, where: str, why: str) -> None:
        if self.strict:
            raise BadSample(f"{where}: {why}")
        self.count += 1
        now = time.monotonic()
        if now - self._last >= self._every:
            more = f" ({self._quiet} more skipped since the last warning)" if self._quiet else ""
            self._warn(f"warning: {where}: {why}; skipped{more}")
            self._last = now
            self._quiet = 0
        else:
            self._quiet += 1


def parse_text(text: str, n: int) -> np.ndarray:
    """One line of separated values (comma, semicolon, tab or spaces) → float32[n]; ValueError says why not."""
    parts = text.translate(_SEPARATORS).split()
    if len(parts) != n:
        raise ValueError(f"expected {n} values, got {len(parts)}")
    try:
        values = np.array([float(p) for p in parts], dtype=np.float32)
    except ValueError:
        bad = next(p for p in parts if not _is_float(p))
        raise ValueError(f"non-numeric value {bad[:40]!r}") from None
    if not np.isfinite(values).all():
        raise ValueError("NaN or infinite value")
    return values


def _is_float(p: str) -> bool:
    try:
        float(p)
        return True
    except ValueError:
        return False


def lines(stream, n: int, skip: Skipper, name: str) -> Iterator[np.ndarray]:
    """Samples from a text stream, one per line; blank lines and `#` comments are ignored."""
    for lineno, raw in enumerate(stream, 1):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        try:
            yield parse_text(text, n)
        except ValueError as ex:
            skip(f"{name} line {lineno}", str(ex))


def stdin_source(n: int, skip: Skipper) -> Iterator[np.ndarray]:
    yield from lines(sys.stdin.buffer, n, skip, "stdin")


def load_file(path: Path, n: int, channels: list[str] | None = None) -> np.ndarray:
    """A whole recording as float32[N, n]: CSV (header optional; channel columns by name when known) or NPZ."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if "X" not in z:
                raise InputError(f"{path}: no array 'X' in the NPZ")
            X = np.asarray(z["X"], dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != n:
            raise InputError(f"{path}: 'X' must be a stream [N, {n}], got shape {list(X.shape)}")
        return X
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise InputError(f"{path}: empty file")
    cols = None
    start = 0
    if not all(_is_float(c) for c in rows[0] if c.strip()):
        header = [c.strip() for c in rows[0]]
        start = 1
        if channels and all(c in header for c in channels):
            cols = [header.index(c) for c in channels]
        else:
            numeric = [i for i, c in enumerate(rows[1] if len(rows) > 1 else []) if _is_float(c)]
            cols = numeric if len(numeric) == n else None
            if cols is None:
                raise InputError(
                    f"{path}: cannot tell which {n} columns are the model's channels "
                    f"({', '.join(channels or [])}); header: {', '.join(header)}"
                )
    out = np.empty((len(rows) - start, n), dtype=np.float32)
    for i, row in enumerate(rows[start:]):
        vals = [row[c] for c in cols] if cols else row
        try:
            out[i] = parse_text(",".join(vals), n)
        except (ValueError, IndexError) as ex:
            raise InputError(f"{path} line {i + start + 1}: {ex}") from None
    return out


def file_source(
    path: Path, n: int, channels: list[str] | None = None, realtime: bool = False, rate: float | None = None
) -> Iterator[np.ndarray]:
    X = load_file(path, n, channels)
    if not realtime:
        yield from X
        return
    if not rate:
        raise InputError("--realtime needs --rate (or a sample_rate in the model's metadata)")
    t0 = time.monotonic()
    for i, row in enumerate(X):
        delay = t0 + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        yield row


def udp_source(
    host: str,
    port: int,
    n: int,
    skip: Skipper,
    ready: Callable[[int], None] | None = None,
    max_datagram: int = MAX_DATAGRAM,
) -> Iterator[np.ndarray]:
    """One sample per datagram: text (separated values) or n packed little-endian float32."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, port))
    except OSError as ex:
        raise InputError(f"udp://{host}:{port}: cannot listen ({ex.strerror})") from None
    if ready:
        ready(sock.getsockname()[1])
    binary_size = 4 * n
    count = 0
    try:
        while True:
            data = sock.recv(65536)
            count += 1
            where = f"udp datagram {count}"
            if len(data) > max_datagram:
                skip(where, f"oversized datagram ({len(data)} bytes > {max_datagram})")
                continue
            if len(data) == binary_size and not _printable(data):
                values = np.frombuffer(data, dtype="<f4").astype(np.float32)
                if not np.isfinite(values).all():
                    skip(where, "NaN or infinite value")
                    continue
                yield values
                continue
            try:
                text = data.decode("ascii")
            except UnicodeDecodeError:
                skip(where, "neither text nor packed float32")
                continue
            try:
                yield parse_text(text, n)
            except ValueError as ex:
                skip(where, str(ex))
    finally:
        sock.close()


def _printable(data: bytes) -> bool:
    return all(32 <= b < 127 or b in (9, 10, 13) for b in data)


def serial_source(
    port: str,
    baud: int,
    n: int,
    skip: Skipper,
    reconnect: bool = False,
    max_backoff: float = 5.0,
    warn: Callable[[str], None] | None = None,
) -> Iterator[np.ndarray]:
    """Lines from a serial port; with reconnect, a port that disappears is reopened with exponential backoff."""
    try:
        import serial
    except ImportError:
        from ..errors import MissingExtraError

        raise MissingExtraError("pyserial", "device") from None
    warn = warn or (lambda m: print(m, file=sys.stderr, flush=True))
    backoff = 0.1
    opened = False
    while True:
        try:
            conn = serial.Serial(port, baud, timeout=None)
        except (serial.SerialException, OSError) as ex:
            if not reconnect:
                raise InputError(f"serial {port}: cannot open ({ex})") from None
            warn(f"warning: serial {port}: cannot open; retrying in {backoff:.1f} s")
            time.sleep(backoff)
            backoff = min(backoff * 2, max_backoff)
            continue
        if opened:
            warn(f"serial {port}: reconnected")
        opened = True
        backoff = 0.1
        try:
            yield from lines(_serial_lines(conn, serial), n, skip, f"serial {port}")
        except (serial.SerialException, OSError) as ex:
            if not reconnect:
                warn(f"serial {port}: port closed ({ex})")
                return
            warn(f"warning: serial {port}: port lost ({ex}); reconnecting")
        finally:
            conn.close()
        if not reconnect:
            return


def _serial_lines(conn, serial) -> Iterator[bytes]:
    while True:
        line = conn.readline()
        if not line:
            raise serial.SerialException("port returned no data")
        yield line


def open_source(
    spec: str,
    n: int,
    skip: Skipper,
    *,
    channels: list[str] | None = None,
    realtime: bool = False,
    rate: float | None = None,
    reconnect: bool = False,
    ready: Callable[[int], None] | None = None,
) -> Iterator[np.ndarray]:
    """`-`/`stdin`, `file:PATH` (or a plain path), `udp://HOST:PORT`, `serial:///dev/ttyX?baud=N`."""
    if spec in ("-", "stdin"):
        return stdin_source(n, skip)
    if spec.startswith("udp://"):
        u = urlparse(spec)
        if u.port is None:
            raise InputError(f"{spec}: give a port, e.g. udp://127.0.0.1:5005")
        return udp_source(u.hostname or "127.0.0.1", u.port, n, skip, ready=ready)
    if spec.startswith("serial://"):
        u = urlparse(spec)
        q = parse_qs(u.query)
        try:
            baud = int(q.get("baud", ["115200"])[0])
        except ValueError:
            raise InputError(f"{spec}: baud must be a number") from None
        if not u.path:
            raise InputError(f"{spec}: give a device, e.g. serial:///dev/ttyUSB0?baud=115200")
        return serial_source(u.path, baud, n, skip, reconnect=reconnect)
    path = Path(spec[len("file:") :] if spec.startswith("file:") else spec)
    return file_source(path, n, channels, realtime, rate)
