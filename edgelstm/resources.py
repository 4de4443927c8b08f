"""Where the data files shipped with edgelstm live: target profiles (targets/*.toml) and calibration recipes
(calibration/*.toml).

The source tree keeps them at the top level, beside edgelstm/; a wheel carries them inside the package as
edgelstm/_targets and edgelstm/_calibration (the package-dir mapping in pyproject.toml), so an installed edgelstm
finds them without a checkout.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder of `name` ("targets" or "calibration"): inside an installed wheel, else in the source tree."""
    packaged = _PACKAGE / f"_{name}"
    return packaged if packaged.is_dir() else _PACKAGE.parent / name


def read_toml(path: Path, what: str = "valid TOML") -> dict:
    """A TOML file (target profile, calibration recipe) as a dict; a bad one is a one-line error naming it."""
    import tomllib

    from .errors import InputError

    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as ex:
        raise InputError(f"{path}: not {what} ({ex})") from None
