"""`python -m edgelstm.runtime MODEL [SOURCE]`: stream samples through a model on the device.

argparse, not Click: this entry point needs only numpy and one interpreter, and starts in well under a second.
"""

from __future__ import annotations

import argparse
import signal
import sys

from ..errors import EdgeLSTMError, StopRequested


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
    p.add_argument("model", help="a .tflite or .onnx model converted by edgelstm (it carries its own metadata)")
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
    p.add_argument("--threads", type=int, help="interpreter threads (default 1, or the target's)")
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
    p.add_argument("--every", type=int, default=1, metavar="K", help="emit every K-th output (default 1)")
    p.add_argument("--reset-after", type=float, metavar="SECONDS", help="reset the state after this much silence")
    p.add_argument("--window", type=int, metavar="W", help="windowed run (BiLSTM, sequence models): window length")
    p.add_argument("--hop", type=int, metavar="H", help="windowed run: samples between outputs")
    p.add_argument("--rate", type=float, metavar="HZ", help="sample rate (default: the model's)")
    p.add_argument("--realtime", action="store_true", help="replay file: sources at --rate instead of at once")
    p.add_argument("--format", choices=["json", "csv"], default="json", help="output format (default json)")
    p.add_argument("-o", "--output", metavar="FILE", help="write outputs here instead of stdout")
    p.add_argument("--strict", action="store_true", help="bad input lines are fatal instead of skipped")
    p.add_argument("--reconnect", action="store_true", help="serial: reopen a port that disappears, with backoff")
    p.add_argument("--max-samples", type=int, metavar="N", help="stop after N samples")
    return p


def run(args: argparse.Namespace, err=None) -> int:
    """Open the model and source, stream, write; return the exit code."""
    from itertools import islice

    from .output import Writer
    from .sources import Skipper, open_source
    from .stream import Runner

    err = err or sys.stderr

    def say(msg: str) -> None:
        print(msg, file=err, flush=True)

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
    )
    info = runner.open(args.model)
    skip = Skipper(strict=args.strict, warn=say)
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
    )
    if args.max_samples is not None:
        samples = islice(samples, args.max_samples)
    counted = _Counter(samples)
    out = open(args.output, "w") if args.output else sys.stdout
    writer = Writer(out, info, args.format, flush=not args.output)
    how = "source closed"

    writing = [False, False]  # (inside writer.write, a signal came meanwhile): a line is written whole and counted

    def stop(signum, frame):
        if writing[0]:
            writing[1] = True
        else:
            raise StopRequested()

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
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
        for s, h in old.items():
            signal.signal(s, h)
        writer.close()
        if args.output:
            out.close()
    say(f"edgelstm run: {counted.n} samples, {skip.count} skipped, {writer.count} outputs ({how})")
    return 0


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
    args = parser(prog).parse_args(argv)
    try:
        return run(args)
    except EdgeLSTMError as ex:
        print(f"Error: {ex}", file=sys.stderr)
        return ex.exit_code
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
