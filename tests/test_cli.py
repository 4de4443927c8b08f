from __future__ import annotations

import subprocess
import sys

import click
from conftest import invoke

from edgelstm.cli import COMMANDS, main


def test_help_does_not_import_tensorflow_or_numpy():
    code = (
        "import sys; from edgelstm.cli import main\n"
        "try: main(['--help'])\nexcept SystemExit: pass\n"
        "print(sorted(m for m in ('tensorflow', 'tf_keras', 'numpy', 'matplotlib') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_every_command_has_help():
    for name in COMMANDS:
        cmd = main.get_command(click.Context(main), name)
        assert cmd is not None and cmd.help and len(cmd.help) > 20, name
        r = invoke(name, "--help")
        assert r.exit_code == 0 and "Usage: " in r.output


def test_sample_command_writes_both_sets(tmp_path):
    r = invoke("sample", tmp_path / "s")
    assert r.exit_code == 0, r.output
    head = (tmp_path / "s" / "activity.csv").read_text().splitlines()[0]
    assert head == "recording,time,acc_x,acc_y,acc_z,gyr_x,gyr_y,gyr_z,label"
    assert (tmp_path / "s" / "forecast.csv").read_text().startswith("time,load,temp\n")


def test_readme_starts_with_the_two_commands():
    from pathlib import Path

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    blocks = readme.split("```")
    assert "edgelstm demo" in blocks[1]
    assert "python -m pytest" in blocks[3]
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text()
    test_cmd = blocks[3].strip().splitlines()[-1].split("&&")[-1].strip()
    assert test_cmd == "python -m pytest -q -n 2 --dist loadfile"  # two xdist workers, a file on one
    assert ci.strip().splitlines()[-1] == test_cmd  # CI runs exactly the README's test command, last


def test_h_is_help_for_every_command():
    """`-h` = `--help` for the group, every command and every `remote` subcommand (run's own parser has -h too)."""
    names = [[]] + [[n] for n in COMMANDS] + [["remote", s] for s in ("status", "run", "bench")]
    for args in names:
        short, long = invoke(*args, "-h"), invoke(*args, "--help")
        assert short.exit_code == 0 and long.exit_code == 0, (args, short.output)
        assert short.output == long.output and "Usage: " in short.output, args


def test_every_optional_module_maps_to_the_extra_that_installs_it():
    """_deps.EXTRAS, the one map behind every 'pip install edgelstm[X]' message, agrees with pyproject.toml: the
    distribution that provides each module is listed in that extra (directly or through an extra it includes)."""
    import importlib.metadata as md
    import re
    import tomllib
    from pathlib import Path

    from edgelstm._deps import EXTRAS

    extras = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    def dists(extra: str) -> set[str]:
        out = set()
        for req in extras[extra]:
            name = re.split(r"[<>=!\[; ]", req, maxsplit=1)[0].lower()
            inner = re.fullmatch(r"edgelstm\[(\w+)\]", req)
            out |= dists(inner.group(1)) if inner else {name.replace("_", "-")}
        return out

    provided = md.packages_distributions()
    for module, extra in EXTRAS.items():
        names = {d.lower().replace("_", "-") for d in provided.get(module, [])}
        assert names & dists(extra), (module, extra, names)


def test_an_import_error_of_an_optional_module_is_one_line_naming_its_extra():
    from edgelstm._deps import missing_extra
    from edgelstm.errors import MissingExtraError

    m = missing_extra(ModuleNotFoundError("No module named 'onnx'", name="onnx"))
    assert isinstance(m, MissingExtraError) and m.exit_code == 2
    assert str(m) == "this command needs 'onnx', which is not installed: pip install 'edgelstm[onnx]'"
    assert missing_extra(ModuleNotFoundError("No module named 'yaml.x'", name="yaml.x")).extra == "deploy"
    assert missing_extra(ModuleNotFoundError("No module named 'numpyy'", name="numpyy")) is None  # a bug: traceback
