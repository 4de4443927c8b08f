"""`--target NAME`: the interpreter, threads and delegate a target profile (targets/*.toml) asks for.

edgelstm.targets.profile reads the profile with the standard library only (tomllib), so the device side stays light.
Options given on the command line win over the profile.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .interpreter import available

# targets/*.toml name packages; the runner names interpreters. Android's LiteRT is the same interpreter.
RUNTIMES = {
    "ai-edge-litert": "litert",
    "litert": "litert",
    "litert-android": "litert",
    "tflite-runtime": "tflite-runtime",
    "onnxruntime": "onnxruntime",
}


def target_options(
    target: str,
    model: str | Path,
    runtime: str | None = None,
    threads: int | None = None,
    delegate: str | None = None,
    say=None,
) -> dict:
    """{runtime, threads, delegate} for `model` on `target`; explicit arguments (not None/auto) win."""
    from ..targets import profile as targets

    if Path(target).suffix != ".toml" and not targets.target_names():
        # an install without the profiles (wheels carry them as edgelstm/_targets; a copied runtime may not)
        raise InputError(
            f"no target profiles are installed here ({targets.TARGET_DIR} is missing or empty): "
            f"pass the profile's path, --target path/to/{target}.toml"
        )
    tgt = targets.load_target(target)
    fmt = Path(model).suffix.lower().lstrip(".")
    if fmt not in tgt.formats:
        raise InputError(f"target {tgt.name} runs {', '.join(tgt.formats)} models, not {model}")
    if runtime in (None, "auto"):
        wanted = RUNTIMES.get(tgt.runtime)
        if wanted is None:
            raise InputError(
                f"target {tgt.name}: runtime {tgt.runtime!r} is not one this runner knows "
                f"({', '.join(sorted(RUNTIMES))})"
            )
        if available(wanted):
            runtime = wanted
        else:  # e.g. Coral's tflite-runtime: LiteRT loads the same delegates
            runtime = "auto"
            if say:
                say(
                    f"note: target {tgt.name} names {tgt.runtime}, which is not installed; using the first "
                    "installed interpreter"
                )
    if threads is None:
        threads = tgt.threads
    if delegate is None and "edgetpu" in tgt.delegate.lower():
        delegate = "edgetpu"
    return {"runtime": runtime, "threads": threads, "delegate": delegate}
