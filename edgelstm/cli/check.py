"""`edgelstm check` and `edgelstm inspect`."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--target", required=True, help="Target name (targets/*.toml) or a path to a target .toml.")
def check(model: Path, target: str) -> None:
    """Check a .tflite/.onnx against a target profile: list every violation (op, tensor), exit 1 if any.

    A C folder (convert --to c) on a microcontroller target is built, measured (flash, RAM) and run under qemu.
    """
    from ..targets.check import check_model_full
    from ..targets.profile import load_target

    tgt = load_target(target)
    if model.is_dir():
        from ..targets.mcu import check_c

        res = check_c(model, tgt)
        for line in res.lines:
            click.echo(line)
        for v in res.violations:
            click.echo(v)
        if res.violations:
            click.echo(f"{model}: {len(res.violations)} violation(s) of target {tgt.name}")
            raise SystemExit(1)
        click.echo(f"{model}: fits target {tgt.name}")
        return
    violations, warnings = check_model_full(model, tgt)
    for w in warnings:
        click.echo(f"warning: {w}")
    for v in violations:
        click.echo(v)
    if violations:
        click.echo(f"{model}: {len(violations)} violation(s) of target {tgt.name}")
        raise SystemExit(1)
    if tgt.cflags and model.suffix == ".tflite":  # a microcontroller: run it in TFLite Micro, against LiteRT
        from ..targets.tflm import compare_with_litert

        res = compare_with_litert(model)
        click.echo(res.line)
        bad = res.violations(model.name)
        for v in bad:
            click.echo(v)
        if bad:
            click.echo(f"{model}: {len(bad)} violation(s) of target {tgt.name}")
            raise SystemExit(1)
        click.echo(f"{model}: fits target {tgt.name} (TFLite Micro)")
    else:
        click.echo(
            f"{model}: fits target {tgt.name} ({tgt.runtime} {tgt.runtime_min_version}+, {tgt.delegate or 'CPU'})"
        )
    for n in tgt.notes:
        click.echo(f"note: {n}")


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print everything as JSON.")
def inspect(model: Path, as_json: bool) -> None:
    """Show a .tflite/.onnx file: ops with counts, I/O signature, tensor dtypes and quantization, size, metadata."""
    from ..modelfile.inspect import inspect_model

    info = inspect_model(model)
    if as_json:
        info.pop("op_tensors", None)
        click.echo(json.dumps(info, indent=2))
        return
    meta = info.get("metadata")
    click.echo(f"{model}: {info['format']}, {info['size_bytes'] / 1024:.1f} KB, {info['n_ops']} ops")
    if meta:
        click.echo(
            f"model: {meta['kind']} {meta['arch']} {meta['units']}x{meta['layers']} {meta['task']}, "
            f"quantization {meta['quantization']}, window {meta['window']}, labels {meta['labels']}"
        )
    else:
        click.echo(f"metadata: none ({info.get('metadata_error')})")
    click.echo(
        "ops: "
        + ", ".join(
            f"{op} x{n}" + (f" (v{info['op_versions'][op]})" if op in info["op_versions"] else "")
            for op, n in sorted(info["ops"].items())
        )
    )
    for side in ("inputs", "outputs"):
        for name, t in info.get(side, {}).items():
            q = f" scale {t['scale']:.4g} zero point {t['zero_point']}" if t["scale"] else ""
            click.echo(f"{side[:-1]} {name}: {t['dtype']} {t['shape']}{q}")
    if info["tensors"]:
        dtypes: dict[str, int] = {}
        for t in info["tensors"]:
            dtypes[t["dtype"]] = dtypes.get(t["dtype"], 0) + 1
        click.echo("tensor dtypes: " + ", ".join(f"{k} x{v}" for k, v in sorted(dtypes.items())))
