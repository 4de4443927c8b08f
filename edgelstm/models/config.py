"""The model configuration stored as config.json in every model directory (pure data, no TensorFlow)."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from .. import __version__
from ..capabilities import shape_why_not
from ..errors import InputError, ModelDirError

FORMAT = "edgelstm-model"
PAD = 0.0  # padding in normalized inputs: the value the Masking layer of a variable-length model skips
FORMAT_VERSION = 1
ARCHS = ("lstm", "gru", "bilstm", "rocket")  # rocket: fixed kernels and a ridge head (train/rocket.py)
TASKS = ("classify", "regress", "forecast")
MERGES = ("concat", "sum")
# what the head sees: the last step's output, the running max of every step's output (models/build.py TimeMax), or
# that and the running max of the convolutional front-end's features beside it
POOLS = ("last", "max", "maxconv")


@dataclass
class ModelConfig:
    arch: str
    task: str
    units: int
    layers: int
    window: int
    n_features: int
    n_outputs: int
    stride: int = 1
    merge: str = "concat"
    dropout: float = 0.0
    masked: bool = False  # variable-length sequences: a Masking layer skips the padding (data/prepare.py PAD)
    peephole: bool = False
    conv: list[list[int]] = field(default_factory=list)  # causal Conv1D front-end: [kernel, filters] per layer
    frame: int = 1  # samples per step: the model steps over frames of this many consecutive samples
    pool: str = "last"  # POOLS
    horizon: int = 1
    channels: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    norm_mean: list[float] = field(default_factory=list)
    norm_std: list[float] = field(default_factory=list)
    # heavy-tailed input channels companded before standardization (runtime/compand.py); [] when none is
    compand_center: list[float] = field(default_factory=list)
    compand_scale: list[float] = field(default_factory=list)
    # or every channel's rank-Gaussian table (runtime/quantile.py): knots and values per channel; [] when none
    quantile_knots: list[list[float]] = field(default_factory=list)
    quantile_values: list[list[float]] = field(default_factory=list)
    target_mean: list[float] = field(default_factory=list)
    target_std: list[float] = field(default_factory=list)
    sample_rate: float | None = None
    training: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise InputError(f"unknown arch {self.arch!r}; choose one of {', '.join(ARCHS)}")
        if self.task not in TASKS:
            raise InputError(f"unknown task {self.task!r}; choose one of {', '.join(TASKS)}")
        if self.merge not in MERGES:
            raise InputError(f"unknown merge {self.merge!r}; choose one of {', '.join(MERGES)}")
        if self.pool not in POOLS:
            raise InputError(f"unknown pool {self.pool!r}; choose one of {', '.join(POOLS)}")
        if self.pool != "last":  # a head the table refuses for this arch (capabilities.RULES)
            why = shape_why_not(self.arch, self.layers, self.peephole, self.conv, self.pool)
            if why:
                raise InputError(why)
        if self.peephole and self.arch == "gru":
            raise InputError("--peephole applies to LSTM cells, not GRU")
        if self.frame < 1 or self.window % self.frame:
            raise InputError(f"the window ({self.window} samples) must be a whole number of frames of {self.frame}")
        if any(len(c) != 2 or min(c) < 1 for c in self.conv):
            raise InputError(f"conv layers must be [kernel, filters] pairs of positive integers, not {self.conv}")

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "edgelstm_version": __version__,
            **dataclasses.asdict(self),
        }

    @classmethod
    def from_json(cls, data: dict, where: str = "config.json") -> ModelConfig:
        if data.get("format") != FORMAT:
            raise ModelDirError(f"{where}: not an edgelstm model configuration")
        if data.get("format_version") != FORMAT_VERSION:
            raise ModelDirError(
                f"{where}: model format version {data.get('format_version')} is not supported by "
                f"edgelstm {__version__} (expects {FORMAT_VERSION}); retrain or use a matching edgelstm"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except (TypeError, InputError) as ex:
            raise ModelDirError(f"{where}: {ex}") from None

    def save(self, model_dir: Path) -> None:
        (Path(model_dir) / "config.json").write_text(json.dumps(self.to_json(), indent=2) + "\n")

    @classmethod
    def load(cls, model_dir: Path) -> ModelConfig:
        path = Path(model_dir)
        if not path.is_dir():
            raise ModelDirError(f"{path}: no such model directory")
        cfg = path / "config.json"
        if not cfg.is_file():
            raise ModelDirError(f"{path}: not an edgelstm model directory (no config.json)")
        try:
            data = json.loads(cfg.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as ex:
            raise ModelDirError(f"{cfg}: not valid JSON ({ex})") from None
        if not isinstance(data, dict):
            raise ModelDirError(f"{cfg}: not an edgelstm model configuration")
        return cls.from_json(data, str(cfg))


def model_name(arch: str, units: int, layers: int, conv=(), pool: str = "last", sep: str = "") -> str:
    """A model's shape in one token, as tune's trials (conv5:32-lstm64x1-maxconvpool) and distill's report (sep
    ":", as --student is written: conv5:32-lstm:64x1-maxconvpool) name it."""
    if arch == "rocket":  # units: its shares; no layers, front-end or head of the recurrent models'
        return f"rocket{sep}{units}"
    front = "".join(f"conv{k}:{f}-" for k, f in conv)
    head = "" if pool == "last" else f"-{pool}pool"
    return f"{front}{arch}{sep}{units}x{layers}{head}"


def parse_conv(text: str | None) -> list[list[int]]:
    """`--conv KERNEL:FILTERS[xN][,KERNEL:FILTERS…]`, e.g. "5:32x2" → [[5, 32], [5, 32]]."""
    layers: list[list[int]] = []
    if (text or "").strip().lower() == "none":
        return layers
    for part in (text or "").replace(" ", "").split(","):
        if not part:
            continue
        spec, _, times = part.partition("x")
        k, _, f = spec.partition(":")
        try:
            kernel, filters, n = int(k), int(f), int(times or 1)
        except ValueError:
            raise InputError(f"--conv {text!r}: expected KERNEL:FILTERS[xN], e.g. 5:32 or 5:32x2") from None
        if min(kernel, filters, n) < 1:
            raise InputError(f"--conv {text!r}: kernel, filters and N must be at least 1")
        layers += [[kernel, filters] for _ in range(n)]
    return layers
