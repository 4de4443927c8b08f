"""Device-side health check, sent to `python -` with the model path: run the model once on a fixed input.

Needs numpy and one interpreter (ai-edge-litert, tflite-runtime or onnxruntime). Prints one JSON line
{"outputs": [[...], ...]} in real units (int8 outputs dequantized). The same script runs locally, so the
deployer compares the device's numbers with its own.
"""

import json
import sys

import numpy as np


def pattern(shape, dtype):
    """A fixed, non-trivial input: a sine over the flattened tensor (integers: scaled and clipped)."""
    shape = [int(d) if int(d) > 0 else 1 for d in shape]
    base = np.sin(np.arange(int(np.prod(shape))) * 0.37).reshape(shape)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.round(base * 50), info.min, info.max).astype(dtype)
    return base.astype(dtype)


def run_tflite(path):
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        # The default XNNPACK delegate crashes under qemu emulation; the reference kernels run everywhere.
        plain = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        it = Interpreter(model_path=path, experimental_op_resolver_type=plain)
    except ImportError:
        from tflite_runtime.interpreter import Interpreter

        it = Interpreter(model_path=path)
    it.allocate_tensors()
    for d in it.get_input_details():
        it.set_tensor(d["index"], pattern(d["shape"], d["dtype"]))
    it.invoke()
    outs = []
    for d in it.get_output_details():
        o = it.get_tensor(d["index"]).astype(np.float64)
        scale, zero = d.get("quantization", (0.0, 0))
        outs.append((o - zero) * scale if scale else o)
    return outs


def run_onnx(path):
    import onnxruntime as ort

    types = {
        "tensor(float)": np.float32,
        "tensor(int8)": np.int8,
        "tensor(uint8)": np.uint8,
        "tensor(int64)": np.int64,
        "tensor(int32)": np.int32,
    }
    s = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    feeds = {}
    for i in s.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        feeds[i.name] = pattern(shape, types.get(i.type, np.float32))
    return [np.asarray(o, dtype=np.float64) for o in s.run(None, feeds)]


if __name__ == "__main__":
    model = sys.argv[1]
    outs = run_onnx(model) if model.endswith(".onnx") else run_tflite(model)
    print(json.dumps({"outputs": [o.ravel().tolist() for o in outs]}))
