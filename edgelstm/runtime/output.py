"""Writing results: JSON lines or CSV, to stdout or a file."""

from __future__ import annotations

import json
import math
from typing import TextIO

from .stream import ModelInfo, Result


def _round(v: float) -> float | None:
    """6 significant digits; a non-finite value (which the runner never emits) as null, never invalid JSON."""
    return float(f"{v:.6g}") if math.isfinite(v) else None


class Writer:
    """One line per result. JSON: {"t", "label", "scores"} for classify, {"t", "values"} otherwise."""

    def __init__(self, out: TextIO, info: ModelInfo, fmt: str = "json", flush: bool = True) -> None:
        self.out = out
        self.info = info
        self.fmt = fmt
        self.flush_each = flush
        self.count = 0
        self._classify = info.task == "classify"
        self._header_done = False

    def _header(self, r: Result) -> None:
        cols = ["t"]
        if self._classify:
            cols += ["label"] + [f"score_{n}" for n in (self.info.labels or range(len(r.values)))]
        else:
            names = self.info.targets or [f"y{i}" for i in range(len(r.values))]
            if len(names) != len(r.values):  # forecast of several steps: name each step
                names = [f"y{i}" for i in range(len(r.values))]
            cols += names
        if r.lookahead:
            cols += ["lookahead", "lookahead_ms"]
        self.out.write(",".join(map(str, cols)) + "\n")
        self._header_done = True

    def write(self, r: Result) -> None:
        vals = [_round(v) for v in r.values.tolist()]
        if self.fmt == "csv":
            if not self._header_done:
                self._header(r)
            row = [r.t] + ([r.label] if self._classify else []) + vals
            if r.lookahead:
                row += [r.lookahead, "" if r.lookahead_ms is None else round(r.lookahead_ms, 3)]
            line = ",".join("" if v is None else str(v) for v in row)
        else:
            d: dict = {"t": r.t}
            if self._classify:
                d["label"] = r.label
                d["scores"] = vals
            else:
                d["values"] = vals
            if r.lookahead:
                d["lookahead"] = r.lookahead
                if r.lookahead_ms is not None:
                    d["lookahead_ms"] = round(r.lookahead_ms, 3)
            line = json.dumps(d, separators=(",", ":"), allow_nan=False)
        self.out.write(line + "\n")
        self.count += 1
        if self.flush_each:
            self.out.flush()

    def close(self) -> None:
        try:
            self.out.flush()
        except (BrokenPipeError, ValueError):
            pass
