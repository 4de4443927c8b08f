"""Shrink a .tflite flatbuffer without changing what it computes: the last step before a .tflite is written.

The TF converter spends bytes a device never reads, and for a small int8 model they outweigh the weights:
names of intermediate tensors, an empty quantization table on every float tensor, one empty Buffer per
activation tensor, and a separate copy of every equal shape, scale and zero-point vector and every equal
quantization or options table (an int8 tensor carries ~30 bytes of quantization parameters). This pass drops
the first three and writes each equal vector or table once (flatbuffers allow shared offsets). Input and output
tensor names, signatures, weights, quantization parameters and metadata are kept exactly.
"""

from __future__ import annotations


def compact_tflite(data: bytes) -> bytes:
    """The same model, smaller: tensors, ops and buffers keep their indices' meaning; only names and layout change."""
    import flatbuffers
    import numpy as np

    from .._deps import tensorflow

    tensorflow()
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    model.description = None
    _strip_names_and_empty_quantization(model)
    _empty_tensors_use_buffer_zero(model)
    _share_equal_tables(model)

    class Builder(flatbuffers.Builder):
        """Writes each equal numeric vector (shape, scale, zero point, op inputs) once; tensor data stays apart."""

        def __init__(self, size: int) -> None:
            super().__init__(size)
            self.vectors: dict = {}
            self.packed: dict = {}

        def CreateNumpyVector(self, x):  # noqa: N802 - flatbuffers' name
            if x.dtype == np.uint8:  # buffer data and metadata: never shared
                return super().CreateNumpyVector(x)
            key = (x.dtype.str, x.tobytes())
            if key not in self.vectors:
                self.vectors[key] = super().CreateNumpyVector(x)
            return self.vectors[key]

    builder = Builder(max(1024, len(data)))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _strip_names_and_empty_quantization(model) -> None:
    for sg in model.subgraphs or []:
        keep = set(_ints(sg.inputs)) | set(_ints(sg.outputs))
        for i, t in enumerate(sg.tensors or []):
            if i not in keep:
                t.name = None  # the interpreter reads a missing name as ""
            q = t.quantization
            if q is not None and all(getattr(q, f) is None for f in ("scale", "zeroPoint", "min", "max", "details")):
                t.quantization = None


def _empty_tensors_use_buffer_zero(model) -> None:
    """Buffer 0 is the schema's empty sentinel: tensors without data may all point at it (schema.fbs)."""

    def empty(b) -> bool:
        return (b.data is None or len(b.data) == 0) and not getattr(b, "offset", 0) and not getattr(b, "size", 0)

    for sg in model.subgraphs or []:
        for t in sg.tensors or []:
            if empty(model.buffers[t.buffer]) and not t.isVariable:
                t.buffer = 0
    keep_used_buffers(model)


def keep_used_buffers(model) -> None:
    """Drop the buffers no tensor or metadata entry points at (buffer 0, the empty sentinel, stays) and renumber."""
    used = {0} | {t.buffer for sg in model.subgraphs or [] for t in sg.tensors or []}
    used |= {md.buffer for md in model.metadata or []}
    remap = {old: new for new, old in enumerate(sorted(used))}
    model.buffers = [model.buffers[i] for i in sorted(used)]
    for sg in model.subgraphs or []:
        for t in sg.tensors or []:
            t.buffer = remap[t.buffer]
    for md in model.metadata or []:
        md.buffer = remap[md.buffer]


class _PackOnce:
    """Mixin for a schema object shared by several parents: packed once per builder, its offset reused."""

    def Pack(self, builder):  # noqa: N802 - flatbuffers' name
        off = builder.packed.get(id(self))
        if off is None:
            off = builder.packed[id(self)] = super().Pack(builder)
        return off


_ONCE: dict[type, type] = {}


def _once(obj):
    cls = type(obj)
    if cls not in _ONCE:
        _ONCE[cls] = type(cls.__name__, (_PackOnce, cls), {})
    obj.__class__ = _ONCE[cls]
    return obj


def _key(v):
    import numpy as np

    if isinstance(v, np.ndarray):
        return (v.dtype.str, v.shape, v.tobytes())
    if isinstance(v, (list, tuple)):
        return tuple(_key(a) for a in v)
    if hasattr(v, "__dict__"):
        return (type(v).__name__, tuple(sorted((k, _key(a)) for k, a in vars(v).items())))
    return v


def _share_equal_tables(model) -> None:
    """Equal quantization tables and equal op options tables become one object each (packed once)."""
    seen: dict = {}

    def shared(obj):
        if obj is None:
            return None
        key = _key(obj)
        if key not in seen:
            seen[key] = _once(obj)
        return seen[key]

    for sg in model.subgraphs or []:
        for t in sg.tensors or []:
            t.quantization = shared(t.quantization)
        for op in sg.operators or []:
            op.builtinOptions = shared(op.builtinOptions)
            if getattr(op, "builtinOptions2", None) is not None:
                op.builtinOptions2 = shared(op.builtinOptions2)


def _ints(v) -> list[int]:
    return [] if v is None else [int(i) for i in v]
