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
