"""One interpreter API over ai-edge-litert, tflite-runtime, onnxruntime and tf.lite, chosen at run time.

Only the chosen backend is imported. tf.lite is never chosen automatically, only when named (`--runtime tf`, on a
host): it drags in TensorFlow (seconds, hundreds of MB), which a device must never load.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, RuntimeUnavailable

TFLITE_ORDER = ("litert", "tflite-runtime")
ORDER = ("litert", "tflite-runtime", "onnxruntime")
MODULES = {
    "litert": "ai_edge_litert.interpreter",
    "tflite-runtime": "tflite_runtime.interpreter",
    "onnxruntime": "onnxruntime",
    "tf": "tensorflow",
}
EDGETPU_LIBS = ("libedgetpu.so.1", "libedgetpu.1.dylib", "edgetpu.dll")
# ai-edge-litert's default XNNPACK delegate segfaults under qemu user emulation (docs/design.md); this turns it off.
NO_DEFAULT_DELEGATES_ENV = "EDGELSTM_NO_DEFAULT_DELEGATES"


@dataclass
class Tensor:
    """One model input or output, by its signature name."""

    name: str
    index: int | str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0


class Interpreter:
    """Set inputs by name, invoke, read outputs by name; `reset()` clears TFLite variable tensors."""

    backend: str
    inputs: dict[str, Tensor]
    outputs: dict[str, Tensor]
    supports_views = False
    masks_padding = False  # True: NaN-padded steps leave the state as it was (the host's batched TF step model)

    def set(self, name: str, value: np.ndarray) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def invoke(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def get(self, name: str) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def reset(self) -> None:
        """Clear hidden state kept inside the interpreter (fused TFLite LSTM variables)."""


# What LiteRT's C++ logger writes to fd 2 on every first allocation with its default delegate: news, not a problem.
NATIVE_NOISE = ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",)


@contextmanager
def dropped_native_lines(drop: tuple[str, ...]):
    """Hold what native code writes to fd 2 meanwhile, then write it back without the lines in `drop`: LiteRT's
    C++ logger cannot be told to be quiet from Python, and a real error still reaches stderr, only a moment later."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no fd 2 (a closed or replaced stderr): nothing to filter
        yield
        return
    held = tempfile.TemporaryFile()
    os.dup2(held.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        held.seek(0)
        text = held.read()
        held.close()
        kept = b"".join(ln for ln in text.splitlines(True) if ln.rstrip(b"\r\n").decode(errors="replace") not in drop)
        if kept:
            os.write(2, kept)


class TFLiteInterpreter(Interpreter):
    def __init__(
        self, path: Path, backend: str, module, threads: int | None, delegate: str | None, no_default_delegates: bool
    ) -> None:
        self.backend = backend
        self._it = _tflite_public(path, backend, module, threads, delegate, no_default_delegates)
        self.inputs, self.outputs = self._signature_tensors()
        raw = getattr(self._it, "_interpreter", None)
        if raw is not None and all(
            hasattr(raw, m) for m in ("SetTensor", "GetTensor", "Invoke", "tensor", "ResetVariableTensors")
        ):
            # The wrapper's own calls: the public invoke() refuses to run while views into tensors exist
            # (views() below), and each public call adds a Python layer per step.
            self._raw = raw
            self._set = raw.SetTensor
            self._get = lambda index: raw.GetTensor(index, 0)
            self.invoke = raw.Invoke
        else:
            self._raw = None
            self._set = self._it.set_tensor
            self._get = self._it.get_tensor
            self.invoke = self._it.invoke

    def _signature_tensors(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        by_index = {d["index"]: d for d in self._it.get_input_details() + self._it.get_output_details()}
        names_in = names_out = None
        sigs = self._it.get_signature_list() if hasattr(self._it, "get_signature_list") else {}
        if sigs:
            runner = self._it.get_signature_runner(next(iter(sigs)))
            names_in = {n: d["index"] for n, d in runner.get_input_details().items()}
            names_out = {n: d["index"] for n, d in runner.get_output_details().items()}
        if names_in is None:  # no signature: fall back to the tensor names themselves
            names_in = {_plain(d["name"]): d["index"] for d in self._it.get_input_details()}
            names_out = {_plain(d["name"]): d["index"] for d in self._it.get_output_details()}

        def tensor(name: str, index: int) -> Tensor:
            d = by_index[index]
            scale, zp = d.get("quantization", (0.0, 0))
            return Tensor(name, index, tuple(int(s) for s in d["shape"]), np.dtype(d["dtype"]), float(scale), int(zp))

        return ({n: tensor(n, i) for n, i in names_in.items()}, {n: tensor(n, i) for n, i in names_out.items()})

    def set(self, name: str, value: np.ndarray) -> None:
        self._set(self.inputs[name].index, value)

    def get(self, name: str) -> np.ndarray:
        return self._get(self.outputs[name].index)

    def reset(self) -> None:
        if self._raw is not None:
            self._raw.ResetVariableTensors()
        else:
            self._it.reset_all_variables()

    @property
    def supports_views(self) -> bool:
        return self._raw is not None

    def view(self, name: str, output: bool = False) -> np.ndarray:
        """A numpy array that IS the tensor's buffer: write inputs / read outputs without copies.

        Valid as long as tensors are not reallocated; the runner never resizes, so it holds them for its lifetime.
        """
        t = (self.outputs if output else self.inputs)[name]
        return self._raw.tensor(self._raw, t.index)


class OnnxInterpreter(Interpreter):
    def __init__(self, path: Path, module, threads: int | None) -> None:
        self.backend = "onnxruntime"
        self._sess = _onnx_public(path, module, threads)
        types = {
            "tensor(float)": np.float32,
            "tensor(int8)": np.int8,
            "tensor(uint8)": np.uint8,
            "tensor(int16)": np.int16,
            "tensor(int32)": np.int32,
            "tensor(int64)": np.int64,
        }

        def tensor(a) -> Tensor:
            shape = tuple(s if isinstance(s, int) else 1 for s in a.shape)
            return Tensor(a.name, a.name, shape, np.dtype(types.get(a.type, np.float32)))

        self.inputs = {a.name: tensor(a) for a in self._sess.get_inputs()}
        self.outputs = {a.name: tensor(a) for a in self._sess.get_outputs()}
        self._out_names = list(self.outputs)
        self._feed: dict[str, np.ndarray] = {}
        self._result: dict[str, np.ndarray] = {}

    def set(self, name: str, value: np.ndarray) -> None:
        self._feed[name] = value

    def invoke(self) -> None:
        self._result = dict(zip(self._out_names, self._sess.run(self._out_names, self._feed)))

    def get(self, name: str) -> np.ndarray:
        return self._result[name]


def _tflite_public(path: Path, backend: str, module, threads, delegate, no_default_delegates: bool):
    """The backend's own `Interpreter`, allocated, with the threads, delegate and op resolver asked for."""
    kwargs: dict = {"model_path": str(path), "num_threads": threads or 1}
    if delegate == "edgetpu":
        kwargs["experimental_delegates"] = [_load_edgetpu(module)]
    resolver = _attr(module, "OpResolverType")
    if no_default_delegates and resolver is not None:
        kwargs["experimental_op_resolver_type"] = resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    try:
        it = module.Interpreter(**kwargs)
        with dropped_native_lines(NATIVE_NOISE):
            it.allocate_tensors()  # where LiteRT applies XNNPACK and logs that it did
    except (ValueError, RuntimeError) as ex:
        raise InputError(f"{path}: {backend} cannot load this model: {str(ex).strip().splitlines()[0]}") from None
    return it


def _onnx_public(path: Path, module, threads):
    """An onnxruntime `InferenceSession` on the CPU with `threads` intra-op threads, its log quiet."""
    opts = module.SessionOptions()
    opts.intra_op_num_threads = threads or 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        return module.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as ex:  # onnxruntime raises its own untyped errors for unreadable models
        raise InputError(f"{path}: onnxruntime cannot load this model: {str(ex).splitlines()[0]}") from None


def open_public(it: Interpreter, path: str | Path, threads: int | None, delegate: str | None, no_default_delegates):
    """A second, independent instance of `it`'s backend on `path` with the same options: the object a user would
    call directly (`set_tensor`/`invoke`/`get_tensor`, or `InferenceSession.run`), for baselines beside our wrapper."""
    module = importlib.import_module(MODULES[it.backend])
    if it.backend == "onnxruntime":
        return _onnx_public(Path(path), module, threads)
    if it.backend == "tf":
        module = module.lite
    if no_default_delegates is None:
        no_default_delegates = os.environ.get(NO_DEFAULT_DELEGATES_ENV, "") not in ("", "0")
    return _tflite_public(Path(path), it.backend, module, threads, delegate, no_default_delegates)


def _plain(tensor_name: str) -> str:
    """`serving_default_x:0` → `x`."""
    name = tensor_name.split(":")[0]
    return name[len("serving_default_") :] if name.startswith("serving_default_") else name


def _attr(module, name: str):
    """`name` from a runtime module, or from its `experimental` namespace (tf.lite keeps it there)."""
    found = getattr(module, name, None)
    return found if found is not None else getattr(getattr(module, "experimental", None), name, None)


def _load_edgetpu(module):
    load = _attr(module, "load_delegate")
    last = None
    libs = {"linux": EDGETPU_LIBS[:1], "darwin": EDGETPU_LIBS[1:2], "win32": EDGETPU_LIBS[2:]}.get(
        sys.platform, EDGETPU_LIBS
    )
    # LiteRT's Delegate.__del__ fails on a delegate that never loaded ("no attribute '_library'") and prints a
    # traceback after our one-line error; that is noise, so it is silenced while the half-made delegate goes away.
    hook = sys.unraisablehook
    sys.unraisablehook = lambda u: None if isinstance(u.exc_value, AttributeError) else hook(u)
    try:
        for lib in libs:
            try:
                return load(lib)
            except (ValueError, OSError, TypeError) as ex:
                last = str(ex)  # not the exception: its traceback holds the half-made delegate
        gc.collect()
    finally:
        sys.unraisablehook = hook
    raise RuntimeUnavailable(
        f"the Coral Edge TPU delegate ({EDGETPU_LIBS[0]}) is not installed or no Edge TPU is attached: install the "
        f"Edge TPU runtime (Debian package libedgetpu1-std) and plug in the device ({last})"
    )


def available(name: str) -> bool:
    """Whether a backend can be imported, without importing it (tf is never probed by import)."""
    import importlib.util

    top = MODULES[name].split(".")[0]
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):
        return False


def choose(path: Path, runtime: str | None = None) -> str:
    """The backend for a model file: forced, or the first installed one that reads its format."""
    is_onnx = Path(path).suffix.lower() == ".onnx"
    if runtime and runtime != "auto":
        if runtime not in MODULES:
            raise InputError(f"unknown runtime {runtime!r}; choose one of auto, {', '.join(MODULES)}")
        if is_onnx != (runtime == "onnxruntime"):
            raise InputError(f"{path}: runtime {runtime} cannot read a {'.onnx' if is_onnx else '.tflite'} model")
        return runtime
    order = ("onnxruntime",) if is_onnx else TFLITE_ORDER
    for name in order:
        if available(name):
            return name
    extra = "onnx" if is_onnx else "device"
    raise RuntimeUnavailable(
        f"no interpreter for {path} is installed (tried {', '.join(order)}): pip install 'edgelstm[{extra}]'"
    )


def open_interpreter(
    path: str | Path,
    runtime: str | None = None,
    threads: int | None = None,
    delegate: str | None = None,
    no_default_delegates: bool | None = None,
) -> Interpreter:
    """Load a .tflite or .onnx model with the chosen (or first available) runtime (a .rocket model: stream.py)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model file")
    name = choose(path, runtime)
    if no_default_delegates is None:
        no_default_delegates = os.environ.get(NO_DEFAULT_DELEGATES_ENV, "") not in ("", "0")
    try:
        if name == "tf":
            os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        module = importlib.import_module(MODULES[name])
        if name == "tf":
            module = module.lite
    except ImportError:
        raise RuntimeUnavailable(f"runtime {name} is not installed ({MODULES[name]})") from None
    if name == "onnxruntime":
        if delegate:
            raise InputError(f"delegate {delegate} needs a .tflite model")
        return OnnxInterpreter(path, module, threads)
    return TFLiteInterpreter(path, name, module, threads, delegate, no_default_delegates)
