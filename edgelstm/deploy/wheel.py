"""The wheel a deploy installs on the device: this very package, so the device runs the same code as here.

From a source tree, pip builds it. From a wheel install (no pyproject.toml beside the package) it is written
from the installed files themselves: the package folder (targets and recipes are inside it) and the installed
distribution's METADATA and entry points, with a fresh RECORD. No build tool, no network, and the same bytes
for every module as the wheel that was installed.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tempfile
import threading
import zipfile
from pathlib import Path

from .. import __version__
from ..errors import DeployError

_lock = threading.Lock()
_cache: dict[str, Path] = {}
PACKAGE = Path(__file__).resolve().parents[1]


def build_wheel() -> Path:
    """The wheel of this package (once per process): built by pip from a source tree, else from the installed
    files (`wheel_from_installed`)."""
    with _lock:
        if "wheel" in _cache and _cache["wheel"].exists():
            return _cache["wheel"]
        out = Path(tempfile.mkdtemp(prefix="edgelstm-wheel-"))
        src = PACKAGE.parent
        _cache["wheel"] = _pip_wheel(src, out) if (src / "pyproject.toml").is_file() else wheel_from_installed(out)
        return _cache["wheel"]


def _pip_wheel(src: Path, out: Path) -> Path:
    p = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src)],
        capture_output=True,
        timeout=600,
    )
    wheels = list(out.glob("edgelstm-*.whl"))
    if p.returncode != 0 or not wheels:
        last = (p.stderr.decode(errors="replace").strip().splitlines() or ["no wheel"])[-1]
        raise DeployError(f"building the edgelstm wheel failed: {last}")
    return wheels[0]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def wheel_from_installed(out: Path, package: Path = PACKAGE) -> Path:
    """A py3-none-any wheel of the installed package: every file under it but bytecode, plus dist-info."""
    from importlib import metadata

    try:
        dist = metadata.distribution("edgelstm")
        meta = dist.read_text("METADATA")
    except metadata.PackageNotFoundError:
        meta = None
    if not meta:
        raise DeployError(
            "edgelstm is neither a source tree nor an installed distribution here; pass --runtime-wheel PATH"
        )
    info = f"edgelstm-{__version__}.dist-info"
    files: list[tuple[str, bytes]] = []
    for p in sorted(package.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo"):
            files.append((p.relative_to(package.parent).as_posix(), p.read_bytes()))
    wheel_meta = f"Wheel-Version: 1.0\nGenerator: edgelstm {__version__}\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files += [(f"{info}/METADATA", meta.encode()), (f"{info}/WHEEL", wheel_meta.encode())]
    entry_points = dist.read_text("entry_points.txt")
    if entry_points:
        files.append((f"{info}/entry_points.txt", entry_points.encode()))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files) + f"{info}/RECORD,,\n"
    path = out / f"edgelstm-{__version__}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in [*files, (f"{info}/RECORD", record.encode())]:
            z.writestr(name, data)
    return path
