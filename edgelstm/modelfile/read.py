"""Reading the edgelstm metadata stored inside every model file, so a device needs only the `.tflite` or `.onnx`.

stdlib + numpy only (a small flatbuffer reader for TFLite, onnxruntime for ONNX): the device runtime imports this
module and never TensorFlow. Writing is `write.py`, at convert time. The JSON schema is in docs/metadata.md.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

from ..capabilities import MODES
from ..errors import MissingExtraError, ModelFileError

KEY = "edgelstm"
SCHEMA = 1
KINDS = ("step", "sequence")
INPUT_ROLES = ("x", "x_reverse", "state", "window")
OUTPUT_ROLES = ("y", "state")
REQUIRED = (
    "schema",
    "edgelstm_version",
    "kind",
    "arch",
    "task",
    "layers",
    "units",
    "merge",
    "labels",
    "channels",
    "targets",
    "horizon",
    "normalization",
    "target_normalization",
    "window",
    "stride",
    "sample_rate",
    "quantization",
    "inputs",
    "outputs",
)


def model_format(path: Path) -> str:
    """ "tflite", "onnx" or "rocket" for an existing model file; anything else is a one-line error naming the file."""
    if not path.is_file():
        raise ModelFileError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix not in (".tflite", ".onnx", ".rocket"):
        raise ModelFileError(f"{path}: not a model file edgelstm knows (expected .tflite, .onnx or .rocket)")
    return suffix[1:]


def read_metadata(path: str | Path) -> dict:
    """The edgelstm metadata dict of a `.tflite`, `.onnx` or `.rocket` file, validated against the schema."""
    path = Path(path)
    fmt = model_format(path)
    if fmt == "rocket":
        from ..runtime.rocket import read_rocket

        meta = read_rocket(path)[0]
        validate(meta, str(path))
        return meta
    if fmt == "tflite":
        raw = _tflite_metadata(path.read_bytes(), path)
    else:
        raw = _onnx_metadata(path)
    if raw is None:
        raise ModelFileError(f"{path}: has no '{KEY}' metadata; convert it with `edgelstm convert`")
    try:
        meta = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as ex:
        raise ModelFileError(f"{path}: the '{KEY}' metadata is not valid JSON ({ex})") from None
    validate(meta, str(path))
    return meta


def validate(meta: dict, where: str = "metadata") -> None:
    """Raise ModelFileError naming the first missing or wrong key."""
    if not isinstance(meta, dict):
        raise ModelFileError(f"{where}: the '{KEY}' metadata is not a JSON object")
    missing = [k for k in REQUIRED if k not in meta]
    if missing:
        raise ModelFileError(f"{where}: the '{KEY}' metadata lacks {', '.join(missing)}")
    if meta["schema"] != SCHEMA:
        raise ModelFileError(
            f"{where}: metadata schema {meta['schema']} is not supported (expects {SCHEMA}); reconvert the model"
        )
    if meta["kind"] not in KINDS:
        raise ModelFileError(f"{where}: unknown model kind {meta['kind']!r}")
    if meta["quantization"] not in MODES:
        raise ModelFileError(f"{where}: unknown quantization {meta['quantization']!r}")
    for side, roles in (("inputs", INPUT_ROLES), ("outputs", OUTPUT_ROLES)):
        for t in meta[side]:
            for k in ("name", "role", "shape", "dtype", "scale", "zero_point"):
                if k not in t:
                    raise ModelFileError(f"{where}: metadata {side} entry {t.get('name', '?')!r} lacks {k}")
            if t["role"] not in roles:
                raise ModelFileError(f"{where}: metadata {side} entry {t['name']!r} has unknown role {t['role']!r}")
    inputs = {t["name"] for t in meta["inputs"]}
    for t in meta["outputs"]:
        if t["role"] == "state" and t.get("state_input") not in inputs:
            raise ModelFileError(f"{where}: state output {t['name']!r} does not name the input it feeds")


# ---- TFLite: a minimal flatbuffer reader (Model.metadata[] -> buffers[i].data) ----------------------------------

_MODEL_BUFFERS, _MODEL_METADATA = 4, 6  # field indices in tflite's schema.fbs table Model
_META_NAME, _META_BUFFER = 0, 1  # table Metadata
_BUF_DATA, _BUF_OFFSET, _BUF_SIZE = 0, 1, 2  # table Buffer


class _Reader:
    def __init__(self, data: bytes, where: str) -> None:
        self.b = data
        self.where = where

    def _u(self, fmt: str, pos: int):
        try:
            return struct.unpack_from(fmt, self.b, pos)[0]
        except struct.error:
            raise ModelFileError(f"{self.where}: truncated or damaged TFLite file") from None

    def field(self, table: int, index: int) -> int | None:
        """Absolute position of a table field, or None when absent."""
        vtable = table - self._u("<i", table)
        vsize = self._u("<H", vtable)
        slot = 4 + 2 * index
        if slot >= vsize:
            return None
        off = self._u("<H", vtable + slot)
        return table + off if off else None

    def ref(self, pos: int) -> int:
        return pos + self._u("<I", pos)

    def vector(self, pos: int) -> tuple[int, int]:
        start = self.ref(pos)
        return start + 4, self._u("<I", start)

    def tables(self, table: int, index: int) -> list[int]:
        pos = self.field(table, index)
        if pos is None:
            return []
        start, n = self.vector(pos)
        return [self.ref(start + 4 * i) for i in range(n)]

    def string(self, table: int, index: int) -> str | None:
        pos = self.field(table, index)
        if pos is None:
            return None
        start, n = self.vector(pos)
        return self.b[start : start + n].decode("utf-8", "replace")


def tflite_metadata_entries(data: bytes, where: str = "model") -> dict[str, bytes]:
    """All named metadata buffers of a TFLite flatbuffer (name -> bytes)."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFileError(f"{where}: not a TFLite model (no TFL3 identifier); the file is damaged or truncated")
    r = _Reader(data, where)
    model = r.ref(0)
    buffers = r.tables(model, _MODEL_BUFFERS)
    out: dict[str, bytes] = {}
    for md in r.tables(model, _MODEL_METADATA):
        name = r.string(md, _META_NAME)
        pos = r.field(md, _META_BUFFER)
        idx = r._u("<I", pos) if pos is not None else 0
        if name is None or idx >= len(buffers):
            raise ModelFileError(f"{where}: damaged TFLite metadata table")
        buf = buffers[idx]
        dpos = r.field(buf, _BUF_DATA)
        if dpos is not None:
            start, n = r.vector(dpos)
        else:  # models > 2 GB keep buffer data after the flatbuffer, addressed by offset and size
            opos, spos = r.field(buf, _BUF_OFFSET), r.field(buf, _BUF_SIZE)
            start = r._u("<Q", opos) if opos is not None else 0
            n = r._u("<Q", spos) if spos is not None else 0
        if start + n > len(data):
            raise ModelFileError(f"{where}: truncated TFLite file (metadata buffer runs past the end)")
        out[name] = bytes(data[start : start + n])
    return out


def _tflite_metadata(data: bytes, path: Path) -> bytes | None:
    return tflite_metadata_entries(data, str(path)).get(KEY)


# ---- ONNX: metadata_props ----------------------------------------------------------------------------------------


def _onnx_metadata(path: Path) -> str | None:
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingExtraError("onnxruntime", "onnx") from None
    try:
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as ex:  # onnxruntime raises its own untyped errors (Fail, InvalidProtobuf, ...) for damaged files
        raise ModelFileError(f"{path}: cannot load the ONNX model ({_first_line(ex)})") from None
    return sess.get_modelmeta().custom_metadata_map.get(KEY)


def _first_line(ex: Exception) -> str:
    text = str(ex).strip().splitlines()
    return text[0] if text else type(ex).__name__


def tflite_operator_versions(data: bytes, where: str = "model") -> list[tuple[int, int]]:
    """(builtin code, version) of each operator of the primary subgraph, in execution order."""
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ModelFileError(f"{where}: not a TFLite model (no TFL3 identifier); the file is damaged or truncated")
    r = _Reader(data, where)
    model = r.ref(0)
    codes = []
    for oc in r.tables(model, 1):  # Model.operator_codes
        dep = r.field(oc, 0)
        ver = r.field(oc, 2)
        code = r.field(oc, 3)
        # the real code is max(deprecated_builtin_code, builtin_code) (schema.fbs, since codes passed 127)
        builtin = max(r._u("<i", code) if code is not None else 0, r._u("<b", dep) if dep is not None else 0)
        codes.append((builtin, r._u("<i", ver) if ver is not None else 1))
    subgraphs = r.tables(model, 2)
    if not subgraphs:
        return []
    ops = []
    for op in r.tables(subgraphs[0], 3):  # SubGraph.operators
        pos = r.field(op, 0)
        idx = r._u("<I", pos) if pos is not None else 0
        ops.append(codes[idx] if idx < len(codes) else (-1, 1))
    return ops
