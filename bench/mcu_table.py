"""The size and per-step table of docs/microcontrollers.md: for each model directory, the float C export measured on
the Cortex-M4 (arm-none-eabi-size, -fstack-usage, instructions per step under qemu -icount) and the step .tflite
files for TFLite Micro (size, measured arena, agreement with LiteRT).

    python bench/mcu_table.py runs/lstm32 runs/gru32 ... [--int8]   # prints the markdown table

--int8 also quantizes each model (`quantize --mode int8 --calibration small`) and measures its TFLM arena and
its integer C (`convert --to c --mode int8`) on the M4.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def row(model_dir: Path, int8: bool) -> str:
    from click.testing import CliRunner

    from edgelstm.cli import main
    from edgelstm.export.convert import source_tflite, write_c
    from edgelstm.models.modeldir import load_config
    from edgelstm.targets.mcu import check_c
    from edgelstm.targets.profile import load_target
    from edgelstm.targets.tflm import compare_with_litert

    cfg = load_config(model_dir)
    m4 = load_target("cortex-m4")
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_c(model_dir, Path(tmp) / "c", "net").path
        c = check_c(folder, m4, n_steps=50)
    tfl = source_tflite(model_dir, "float")
    f = compare_with_litert(tfl)
    cells = [
        f"{cfg.arch}{' peephole' if cfg.peephole else ''} {cfg.layers}x{cfg.units}",
        f"{c.sizes.flash:,}",
        f"{c.sizes.state:,} + {c.sizes.stack:,}",
        f"{c.instructions:,.0f}" + (" /window" if cfg.arch == "bilstm" else ""),
        f"{c.max_abs_diff:.1g}",
        f"{tfl.stat().st_size:,}",
        f"{f.arena:,}",
        f"{f.max_abs_diff:.1g}",
    ]
    if int8:
        q = model_dir / "step.int8.tflite"
        if not q.is_file():
            r = CliRunner().invoke(
                main,
                [
                    "quantize",
                    str(model_dir),
                    "--mode",
                    "int8",
                    "--calibration",
                    "small",
                    "--no-report",
                    "-o",
                    str(model_dir),
                ],
            )
            if r.exit_code != 0:
                print(r.output, file=sys.stderr)
        if q.is_file():
            i = compare_with_litert(q)
            agree = f"{100 * i.argmax_agreement:.1f} %" if i.argmax_agreement is not None else "-"
            cells += [f"{q.stat().st_size:,}", f"{i.arena:,}", f"{i.max_abs_diff:.2g} / {agree}"]
            with tempfile.TemporaryDirectory() as tmp:
                c8 = check_c(write_c(model_dir, Path(tmp) / "c8", "net", "int8").path, m4, n_steps=50)
            per = f"{c8.instructions:,.0f}" + (" /window" if cfg.arch == "bilstm" else "")
            cells += [f"{c8.sizes.flash:,}", f"{c8.sizes.state:,} + {c8.sizes.stack:,}", per]
        else:
            cells += ["-"] * 6
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dirs", nargs="+", type=Path)
    ap.add_argument("--int8", action="store_true")
    args = ap.parse_args()
    head = [
        "model",
        "C flash B",
        "C RAM B (state + stack)",
        "M4 instructions /step",
        "M4 vs host",
        "float .tflite B",
        "TFLM arena B",
        "TFLM vs LiteRT",
    ]
    if args.int8:
        head += ["int8 .tflite B", "int8 TFLM arena B", "int8 TFLM vs LiteRT (max |Δ| / argmax)"]
        head += ["int8 C flash B", "int8 C RAM B", "int8 M4 instructions /step"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for d in args.model_dirs:
        print(row(d, args.int8), flush=True)


if __name__ == "__main__":
    main()
