"""Where samples come from: stdin, file:PATH, udp://HOST:PORT, serial:///dev/ttyX?baud=N.

Every source yields one float32 array of `n_features` values per sample. Bad input (malformed, wrong count,
NaN, non-numeric, oversized datagram) is counted and skipped with a rate-limited warning, or fatal with strict.
"""

from __future__ import annotations

import csv
import math
import re
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
        self.reasons: dict[str, int] = {}  # why -> how many lines: what the end of a run reports

    def __call__(self, where: str, why: str) -> None:
        if self.strict:
            raise BadSample(f"{where}: {why}")
        self.count += 1
        self.reasons[why] = self.reasons.get(why, 0) + 1
        now = time.monotonic()
        if now - self._last >= self._every:
            more = f" ({self._quiet} more skipped since the last warning)" if self._quiet else ""
            self._warn(f"warning: {where}: {why}; skipped{more}")
            self._last = now
            self._quiet = 0
        else:
            self._quiet += 1


def all_skipped(skip: Skipper, n: int) -> str:
    """Why a run that skipped every line gave nothing: its most common reason, with the fix for a wrong count."""
    why = max(skip.reasons, key=skip.reasons.get) if skip.reasons else "bad input"
    m = re.fullmatch(r"expected \d+ values, got (\d+)", why)
    if m:
        return f"every line skipped: {m.group(1)} values, the model takes {n} — use --columns"
    return f"every line skipped ({skip.count}): {why}"


# a plain decimal or scientific number: no '_' separators, no hex, no non-ASCII digits, no nan/inf words
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_FLOAT32_MAX = float(np.finfo(np.float32).max)


def split_fields(text: str) -> list[str]:
    """The fields of one line: split on the first of comma, semicolon, tab that occurs, else on runs of spaces.
    Fields are stripped; with a separator character an empty field stays (and makes the line bad)."""
    for sep in (",", ";", "\t"):
        if sep in text:
            return [p.strip() for p in text.split(sep)]
    return text.split()


def parse_text(
    text: str, n: int, bounds: tuple[np.ndarray, np.ndarray] | None = None, columns: list[int] | None = None
) -> np.ndarray:
    """One line of separated values (comma, semicolon, tab or spaces) → float32[n]; ValueError says why not.

    Only plain decimal/scientific numbers are numbers; an empty field is a bad line (it would shift the columns).
    `bounds` (lo, hi) rejects values outside them (the runner's out-of-range policy); NaN and ±inf are always out.
    `columns` (0-based, `parse_columns`) picks the model's values out of a wider line.
    """
    parts = split_fields(text)
    if columns is not None:
        if len(parts) <= max(columns):
            raise ValueError(f"expected at least {max(columns) + 1} values (--columns), got {len(parts)}")
        parts = [parts[i] for i in columns]
    if len(parts) != n:
        raise ValueError(f"expected {n} values, got {len(parts)}")
    if not all(NUMBER.fullmatch(p) for p in parts):
        raise ValueError(_why_not_numbers(parts))
    values = np.array([float(p) for p in parts], dtype=np.float32)
    check_values(values, bounds)
    return values


def parse_columns(spec: str, n: int) -> list[int]:
    """`--columns 3-8` or `3,4,5,6,7,8` (1-based, in the model's channel order) → 0-based indices; exactly n."""
    out: list[int] = []
    try:
        for part in spec.split(","):
            lo, _, hi = part.strip().partition("-")
            a, b = int(lo), int(hi or lo)
            if a < 1 or b < a:
                raise ValueError
            out.extend(range(a - 1, b))
    except ValueError:
        raise InputError(f"--columns {spec!r}: give 1-based column numbers or ranges, e.g. 3-8 or 1,2,5") from None
    if len(out) != n:
        raise InputError(f"--columns {spec!r} names {len(out)} columns; the model takes {n} values per sample")
    return out


def check_values(values: np.ndarray, bounds: tuple[np.ndarray, np.ndarray] | None = None) -> None:
    """ValueError unless every value is finite (as float32) and within `bounds`."""
    if bounds is None:
        if not np.isfinite(values).all():
            raise ValueError("NaN or infinite value")
        return
    lo, hi = bounds
    if (values >= lo).all() and (values <= hi).all():  # False for NaN: one test for both
        return
    if not np.isfinite(values).all():
        raise ValueError("NaN or infinite value")
    i = int(np.argmax((values < lo) | (values > hi)))
    raise ValueError(
        f"value {float(values[i]):.6g} in column {i + 1} is outside the model's input range "
        f"[{float(lo[i]):.6g}, {float(hi[i]):.6g}] (--max-deviation)"
    )


MAX_DEVIATION = 1000.0


def input_bounds(mean, std, deviations: float = MAX_DEVIATION, compander=None) -> tuple[np.ndarray, np.ndarray]:
    """The out-of-range policy: a sample more than `deviations` standard deviations from the training mean in any
    channel is a bad sample (counted and skipped like a malformed line), never fed to the model. Such a value is a
    glitch, not a measurement the model knows; a float model fed one (3e38) overflowed into NaN and its state never
    recovered. Bounds are float32 and finite, so NaN and ±inf fall outside them too. A companded channel's mean and
    std are in companded units and its compander keeps every finite sample finite, so it accepts any finite value."""
    mean = np.asarray(mean, np.float64)
    spread = deviations * np.maximum(np.asarray(std, np.float64), 1e-12)
    lo = np.clip(mean - spread, -_FLOAT32_MAX, _FLOAT32_MAX).astype(np.float32)
    hi = np.clip(mean + spread, -_FLOAT32_MAX, _FLOAT32_MAX).astype(np.float32)
    if compander is not None:
        lo[compander.idx], hi[compander.idx] = -_FLOAT32_MAX, _FLOAT32_MAX
    return lo, hi


def _why_not_numbers(parts: list[str]) -> str:
    for i, p in enumerate(parts):
        if not p:
            return f"empty field {i + 1}"
        if not NUMBER.fullmatch(p):
            if p.lower().lstrip("+-") in ("nan", "inf", "infinity"):
                return "NaN or infinite value"
            return f"non-numeric value {p[:40]!r}"
    return "non-numeric value"


def _is_float(p: str) -> bool:
    return NUMBER.fullmatch(p.strip()) is not None


def lines(
    stream, n: int, skip: Skipper, name: str, bounds=None, first: int = 1, columns: list[int] | None = None
) -> Iterator[np.ndarray]:
    """Samples from a text stream, one per line; blank lines and `#` comments are ignored. Bytes are decoded as
    UTF-8 with replacement, so a stray byte makes one bad line, never a crash."""
    for lineno, raw in enumerate(stream, first):
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        text = text.strip()
        if not text or text.startswith("#"):
            continue
        try:
            yield parse_text(text, n, bounds, columns)
        except ValueError as ex:
            skip(f"{name} line {lineno}", str(ex))


def stdin_source(n: int, skip: Skipper, bounds=None, columns: list[int] | None = None) -> Iterator[np.ndarray]:
    yield from lines(sys.stdin.buffer, n, skip, "stdin", bounds, columns=columns)


def load_file(path: Path, n: int, channels: list[str] | None = None) -> np.ndarray:
    """A whole recording as float32[N, n] (host-side convenience; the runner streams with `file_samples`). Any bad
    row is an InputError naming its line."""
    rows = list(file_samples(path, n, Skipper(strict=True), channels))
    if not rows:
        raise InputError(f"{path}: no samples")
    return np.stack(rows)


def _npz_stream(path: Path, n: int) -> np.ndarray:
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            if "X" not in z:
                raise InputError(f"{path}: no array 'X' in the NPZ")
            X = z["X"]
    except (zipfile.BadZipFile, EOFError, OSError) as ex:
        raise InputError(f"{path}: not a readable NPZ file ({ex})") from None
    except ValueError as ex:  # object arrays (pickles) are refused by allow_pickle=False
        raise InputError(f"{path}: 'X' is not a plain numeric array ({ex})") from None
    if X.dtype.kind not in "fiub":
        raise InputError(f"{path}: 'X' must be numbers, got dtype {X.dtype}")
    if X.ndim != 2 or X.shape[1] != n:
        raise InputError(f"{path}: 'X' must be a stream [N, {n}], got shape {list(X.shape)}")
    return X


def file_samples(path: Path, n: int, skip: Skipper, channels: list[str] | None = None, bounds=None):
    """A recording's samples, streamed: CSV line by line in bounded memory (header optional; channel columns by
    name when known; a UTF-8 BOM is dropped), or an NPZ's `X` [N, n] row by row. Bad rows go to `skip`."""
    if path.is_dir() or not path.exists():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() == ".npz":
        X = _npz_stream(path, n)
        for i, row in enumerate(X):
            v = np.asarray(row, np.float32)
            try:
                check_values(v, bounds)
            except ValueError as ex:
                skip(f"{path} row {i}", str(ex))
                continue
            yield v
        return
    try:
        f = path.open("rb")
    except OSError as ex:
        raise InputError(f"{path}: {ex.strerror}") from None
    with f:
        it = (raw.decode("utf-8", "replace") for raw in f)
        first = next(it, None)
        if first is None:
            raise InputError(f"{path}: empty file")
        first = first.lstrip("\ufeff")
        head = _csv_row(first, path)
        if not head or all(_is_float(c) for c in head if c.strip()):  # no header: every line is a sample
            yield from lines(_chain(first, it), n, skip, str(path), bounds)
            return
        header = [c.strip() for c in head]
        if channels and all(c in header for c in channels):
            cols = [header.index(c) for c in channels]
            second = None
        else:
            second = next(it, None)
            row = _csv_row(second, path) if second is not None else []
            cols = [i for i, c in enumerate(row) if _is_float(c)] if len(row) == len(header) else []
            if len(cols) != n:
                raise InputError(
                    f"{path}: cannot tell which {n} columns are the model's channels "
                    f"({', '.join(channels or [])}); header: {', '.join(header)}"
                )
        rest = it if second is None else _chain(second, it)
        width = len(header)
        for lineno, line in enumerate(rest, 2):
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            row = text.split(",")
            if len(row) != width:
                skip(f"{path} line {lineno}", f"expected {width} columns, got {len(row)}")
                continue
            try:
                yield parse_text(",".join(row[c] for c in cols), n, bounds)
            except ValueError as ex:
                skip(f"{path} line {lineno}", str(ex))


def _chain(first: str, rest):
    yield first
    yield from rest


def _csv_row(line: str, path: Path) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error as ex:
        raise InputError(f"{path} line 1: not a CSV header ({ex})") from None


def file_source(
    path: Path,
    n: int,
    channels: list[str] | None = None,
    realtime: bool = False,
    rate: float | None = None,
    skip: Skipper | None = None,
    bounds=None,
) -> Iterator[np.ndarray]:
    if realtime and not rate:
        raise InputError("--realtime needs --rate (or a sample_rate in the model's metadata)")
    X = file_samples(path, n, skip or Skipper(), channels, bounds)
    if not realtime:
        yield from X
        return
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
    bounds=None,
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
                try:
                    check_values(values, bounds)
                except ValueError as ex:
                    skip(where, str(ex))
                    continue
                yield values
                continue
            try:
                text = data.decode("ascii")
            except UnicodeDecodeError:
                skip(where, "neither text nor packed float32")
                continue
            try:
                yield parse_text(text, n, bounds)
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
    bounds=None,
    columns: list[int] | None = None,
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
            yield from lines(_serial_lines(conn, serial), n, skip, f"serial {port}", bounds, columns=columns)
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
    bounds: tuple[np.ndarray, np.ndarray] | None = None,
    columns: str | None = None,
) -> Iterator[np.ndarray]:
    """`-`/`stdin`, `file:PATH` (or a plain path), `udp://HOST:PORT`, `serial:///dev/ttyX?baud=N`. `bounds`
    (`input_bounds`) makes samples outside them bad samples; `columns` (`--columns`) picks the model's values out of
    wider stdin or serial lines."""
    cols = parse_columns(columns, n) if columns is not None else None
    if cols is not None and not (spec in ("-", "stdin") or spec.startswith("serial://")):
        raise InputError(
            f"--columns is for stdin and serial lines; {spec} is not one (a file: CSV finds the model's channels "
            "by its header)"
        )
    if spec in ("-", "stdin"):
        return stdin_source(n, skip, bounds, cols)
    if spec.startswith("udp://"):
        u = urlparse(spec)
        try:
            port = u.port
        except ValueError:
            port = -1
        if port is None or port < 0 or port > 65535:
            raise InputError(f"{spec}: give a port from 0 to 65535, e.g. udp://127.0.0.1:5005")
        return udp_source(u.hostname or "127.0.0.1", port, n, skip, ready=ready, bounds=bounds)
    if spec.startswith("serial://"):
        u = urlparse(spec)
        q = parse_qs(u.query)
        try:
            baud = int(q.get("baud", ["115200"])[0])
        except ValueError:
            raise InputError(f"{spec}: baud must be a number") from None
        if not u.path:
            raise InputError(f"{spec}: give a device, e.g. serial:///dev/ttyUSB0?baud=115200")
        return serial_source(u.path, baud, n, skip, reconnect=reconnect, bounds=bounds, columns=cols)
    scheme = re.match(r"([A-Za-z][\w+.-]*)://", spec)
    if scheme:  # not a path: Path() would fold "ftp://h/x" into "ftp:/h/x" and blame a missing file
        raise InputError(
            f"{spec}: unknown source {scheme.group(1)}://; give -, file:PATH, udp://HOST:PORT or serial:///dev/ttyX"
        )
    path = Path(spec[len("file:") :] if spec.startswith("file:") else spec)
    return file_source(path, n, channels, realtime, rate, skip, bounds)
