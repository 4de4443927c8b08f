"""`python -m edgelstm.runtime MODEL [SOURCE]`: stream samples through a model on the device.

argparse, not Click: this entry point needs only numpy and one interpreter, and starts in well under a second.
"""

from __future__ import annotations

import argparse
import signal
import sys

from ..errors import EdgeLSTMError, InputError, StopRequested


def _number(kind, low: float, inclusive: bool, what: str):
    """An argparse type: a number of `kind` at or above (or above) `low`; anything else is a usage error (exit 2)."""

    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}") from None
        if v != v or (v < low if inclusive else v <= low):
            raise argparse.ArgumentTypeError(f"{text!r}: must be {what}")
        return v

    return parse


POSITIVE_INT = _number(int, 1, True, "1 or more")
COUNT = _number(int, 0, True, "0 or more")
POSITIVE = _number(float, 0.0, False, "more than 0")
NON_NEGATIVE = _number(float, 0.0, True, "0 or more")


class _Formatter(argparse.HelpFormatter):
    """'Usage:' as Click writes it, so `edgelstm run --help` reads like every other command."""

    def add_usage(self, usage, actions, groups, prefix=None):
        super().add_usage(usage, actions, groups, prefix or "Usage: ")


def parser(prog: str = "python -m edgelstm.runtime") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        formatter_class=_Formatter,
        description="Stream samples through a step (or windowed sequence) model; one output line each.",
    )
    p.add_argument("model", help="a .tflite, .onnx or .rocket model made by edgelstm (it carries its own metadata)")
    p.add_argument(
        "source",
        nargs="?",
        default="-",
        help="- (stdin, one line of separated values per sample), file:PATH (CSV/NPZ), "
        "udp://127.0.0.1:PORT, serial:///dev/ttyUSB0?baud=115200 (default: stdin)",
    )
    p.add_argument(
        "--runtime",
        default="auto",
        choices=["auto", "litert", "tflite-runtime", "onnxruntime", "tf"],
        help="interpreter (default: the first installed of litert, tflite-runtime, onnxruntime, tf)",
    )
    p.add_argument("--threads", type=POSITIVE_INT, help="interpreter threads (default 1, or the target's)")
    p.add_argument("--delegate", choices=["edgetpu"], help="load a delegate (Coral: libedgetpu)")
    p.add_argument(
        "--target",
        metavar="NAME",
        help="target profile (targets/NAME.toml, or a path to one): takes runtime, threads and "
        "delegate from it (Coral: --delegate edgetpu); options given here win",
    )
    p.add_argument(
        "--no-default-delegates",
        action="store_true",
        default=None,
        help="LiteRT without its default XNNPACK delegate (needed under qemu emulation; also "
        "EDGELSTM_NO_DEFAULT_DELEGATES=1)",
    )
    p.add_argument("--every", type=POSITIVE_INT, default=1, metavar="K", help="emit every K-th output (default 1)")
    p.add_argument(
        "--reset-after", type=NON_NEGATIVE, metavar="SECONDS", help="reset the state after this much silence"
    )
    p.add_argument(
        "--window", type=POSITIVE_INT, metavar="W", help="windowed run (BiLSTM, sequence models): window length"
    )
    p.add_argument("--hop", type=POSITIVE_INT, metavar="H", help="windowed run: samples between outputs")
    p.add_argument("--rate", type=POSITIVE, metavar="HZ", help="sample rate (default: the model's)")
    p.add_argument("--realtime", action="store_true", help="replay file: sources at --rate instead of at once")
    p.add_argument("--format", choices=["json", "csv"], default="json", help="output format (default json)")
    p.add_argument("-o", "--output", metavar="FILE", help="write outputs here instead of stdout")
    p.add_argument("--strict", action="store_true", help="bad input lines are fatal instead of skipped")
    p.add_argument(
        "--columns",
        metavar="SPEC",
        help="stdin/serial: which values of each line are the model's channels, 1-based, in its channel order "
        "(e.g. 3-8 for a CSV line recording,time,6 channels,label)",
    )
    p.add_argument("--reconnect", action="store_true", help="serial: reopen a port that disappears, with backoff")
    p.add_argument("--max-samples", type=COUNT, metavar="N", help="stop after N samples")
    p.add_argument(
        "--max-deviation",
        type=POSITIVE,
        default=MAX_DEVIATION,
        metavar="SIGMAS",
        help="a sample further than this many standard deviations of the training data from its mean, in any "
        f"channel, is a bad sample: skipped and counted, never fed to the model (default {MAX_DEVIATION:g}; "
        "inf turns this off, NaN and infinity are always bad)",
    )
    return p


MAX_DEVIATION = 1000.0  # = sources.MAX_DEVIATION (not imported here: --help stays free of numpy)


def run(args: argparse.Namespace, err=None) -> int:
    """Open the model and source, stream, write; return the exit code."""
    from itertools import islice

    from .output import Writer
    from .sources import Skipper, input_bounds, open_source
    from .stream import Runner

    err = err or sys.stderr

    def say(msg: str) -> None:
        print(msg, file=err, flush=True)

    if args.output:
        check_output_file(args.output)

    opts = {"runtime": args.runtime, "threads": args.threads or 1, "delegate": args.delegate}
    if args.target:
        from .targetopts import target_options

        opts = target_options(args.target, args.model, args.runtime, args.threads, args.delegate, say=say)
    runner = Runner(
        runtime=opts["runtime"],
        threads=opts["threads"],
        delegate=opts["delegate"],
        no_default_delegates=args.no_default_delegates,
        every=args.every,
        reset_after=args.reset_after,
        window=args.window,
        hop=args.hop,
        rate=args.rate,
        faults=Skipper(strict=args.strict, warn=say),
    )
    info = runner.open(args.model)
    pool = info.meta.get("pool", "last")
    what = "a rocket model's shares" if info.arch == "rocket" else f"--pool {pool}"
    if (pool != "last" or info.arch == "rocket") and not runner.windowed and args.reset_after is None:
        # a running max never falls, and a share counts every step: over an endless stream either would answer
        # about everything seen since the start
        say(
            f"note: {args.model}: the head pools over every sample since the last reset ({what}); for a "
            "continuous stream give --window W --hop H (each window from a fresh state) or --reset-after SECONDS"
        )
    skip = Skipper(strict=args.strict, warn=say)
    bounds = input_bounds(runner._mean, 1.0 / runner._inv_std, args.max_deviation, runner.compander)
    rate = args.rate or info.sample_rate
    samples = open_source(
        args.source,
        info.n_features,
        skip,
        channels=info.channels,
        realtime=args.realtime,
        rate=rate,
        reconnect=args.reconnect,
        ready=lambda port: say(f"listening on udp port {port}"),
        bounds=bounds,
        columns=args.columns,
    )
    if args.max_samples is not None:
        samples = islice(samples, args.max_samples)
    counted = _Counter(samples)
    try:
        out = open(args.output, "w") if args.output else sys.stdout
    except OSError as ex:
        raise InputError(f"{args.output}: cannot write ({ex.strerror})") from None
    writer = Writer(out, info, args.format, flush=not args.output)
    how = "source closed"

    writing = [False, False]  # (inside writer.write, a signal came meanwhile): a line is written whole and counted

    def stop(signum, frame):
        if writing[0]:
            writing[1] = True
        else:
            raise StopRequested()

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    import numpy as np

    quiet = np.errstate(all="ignore")  # an overflow is a bad sample or a reset state, counted: no numpy warnings
    quiet.__enter__()
    try:
        for r in runner.stream(counted):
            writing[0] = True
            writer.write(r)
            writing[0] = False
            if writing[1]:
                raise StopRequested()
    except StopRequested:
        how = "stopped by signal"
    except BrokenPipeError:
        how = "output closed"
    finally:
        quiet.__exit__(None, None, None)
        for s, h in old.items():
            signal.signal(s, h)
        writer.close()
        if args.output:
            out.close()
    resets = f", {runner.faults.count} state resets (non-finite output or state)" if runner.faults.count else ""
    say(f"edgelstm run: {counted.n} samples, {skip.count} skipped, {writer.count} outputs{resets} ({how})")
    if counted.n == 0 and skip.count:  # nothing was usable: say why, and fail, so a script notices
        from .sources import all_skipped

        raise InputError(all_skipped(skip, info.n_features))
    return 0


def check_output_file(path: str) -> None:
    """Before any work: the output must be a writable file (or a new one in an existing, writable folder)."""
    import os

    p = os.path.abspath(path)
    folder = os.path.dirname(p)
    if os.path.isdir(p):
        raise InputError(f"{path}: is a folder, not a file")
    if not os.path.isdir(folder):
        raise InputError(f"{path}: folder {folder} does not exist")
    if not os.access(p if os.path.exists(p) else folder, os.W_OK):
        raise InputError(f"{path}: cannot write there (permission denied)")


class _Counter:
    def __init__(self, it) -> None:
        self.it = iter(it)
        self.n = 0

    def __iter__(self):
        return self

    def __next__(self):
        v = next(self.it)
        self.n += 1
        return v


def main(argv: list[str] | None = None, prog: str = "python -m edgelstm.runtime") -> int:
    args = parser(prog).parse_intermixed_args(argv)  # SOURCE before or after the options
    try:
        return run(args)
    except EdgeLSTMError as ex:
        print(f"Error: {ex}", file=sys.stderr)
        return ex.exit_code
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
