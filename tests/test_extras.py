"""Each extra alone: the wheel installed with one extra into a venv of its own (no system site-packages) runs the
commands the README's table says that extra covers, and every command it does not cover ends in one line naming
the extra to install, exit 2, no traceback. The deploy venv deploys over a real sshd without --runtime-wheel."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def cli(venv: Path, *args, cwd: Path, input: str | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """`edgelstm ARGS` of that venv, from `cwd` (never the checkout: nothing but the venv can be imported)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv}:{env.get('PATH', '')}"
    return subprocess.run(
        [str(venv / "edgelstm"), *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        input=input,
        timeout=timeout,
    )


def ok(p: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert p.returncode == 0, (p.args, p.stdout[-1500:], p.stderr[-3000:])
    assert "Traceback" not in p.stderr and "INFO: Created TensorFlow Lite" not in p.stderr, p.stderr[-2000:]
    return p


def needs(p: subprocess.CompletedProcess, extra: str) -> str:
    """The one-line 'install edgelstm[extra]' error, exit 2."""
    err = p.stderr.strip()
    assert p.returncode == 2, (p.args, p.returncode, err[-3000:])
    assert "\n" not in err and "Traceback" not in err, err[-3000:]
    assert err.startswith("Error: ") and err.endswith(f"pip install 'edgelstm[{extra}]'"), err
    return err


@pytest.fixture(scope="module")
def made(extra_venv, tmp_path_factory) -> dict:
    """Everything the train venv makes alone: sample data, a 1-epoch 4-unit LSTM, its step model as .tflite and
    .onnx, the int8 step model with its report."""
    extra_venv.prefetch("train", "device", "base", "onnx", "deploy")  # two at a time, beside the commands below
    train = extra_venv("train")
    work = tmp_path_factory.mktemp("extras")
    ok(cli(train, "sample", "data", cwd=work))
    model = work / "m"
    tiny = ("--units", "4", "--epochs", "1", "--augment", "0")
    ok(cli(train, "train", "data/activity.csv", *tiny, "-o", model, cwd=work))
    ok(cli(train, "convert", model, "--to", "tflite", "--kind", "step", "-o", model / "export", cwd=work))
    # ONNX needs the onnx extra too: each .onnx is checked against Keras with onnxruntime before it is written
    needs(cli(train, "convert", model, "--to", "onnx", "--kind", "step", "-o", model / "export", cwd=work), "onnx")
    from edgelstm.export.convert import convert

    convert(model, "onnx", "step", model / "export")  # this checkout makes it for the venvs that run it
    q = ok(cli(train, "quantize", model, cwd=work))
    samples = work / "samples.csv"  # four lines of the six channels, as a device's sensor sends them
    rows = (work / "data" / "activity.csv").read_text().splitlines()[1:5]
    samples.write_text("".join(",".join(ln.split(",")[2:8]) + "\n" for ln in rows))
    return {
        "work": work,
        "model": model,
        "tflite": model / "export" / "step.tflite",
        "onnx": model / "export" / "step.onnx",
        "quantize": q,
        "samples": samples,
    }


def sample_bytes(work: Path) -> bytes:
    """What this checkout's `edgelstm sample` writes (the hard data; the activity_csv fixture is the easy one)."""
    from edgelstm.data.sample import write_activity_csv

    return write_activity_csv(work / "reference" / "activity.csv").read_bytes()


def reference(path: Path, samples: Path) -> np.ndarray:
    """The same samples through this checkout's runner: what every venv must print."""
    from edgelstm.runtime import Runner

    runner = Runner()
    runner.open(path)
    raw = np.loadtxt(samples, delimiter=",", dtype=np.float32, ndmin=2)
    return np.array([r.values for r in runner.stream(raw)])


def streamed(p: subprocess.CompletedProcess) -> np.ndarray:
    return np.array([json.loads(ln)["scores"] for ln in ok(p).stdout.splitlines()])


def test_train_extra_trains_converts_quantizes_and_evaluates(made, extra_venv, activity_csv):
    train, work = extra_venv("train"), made["work"]
    assert (work / "data" / "activity.csv").read_bytes() == sample_bytes(work)  # `sample` = the library's
    assert (made["model"] / "step.int8.tflite").stat().st_size > 0 and (made["model"] / "report.html").is_file()
    assert "step.int8.tflite: accuracy" in made["quantize"].stdout + made["quantize"].stderr, made["quantize"].stdout
    ev = ok(cli(train, "evaluate", made["tflite"], "--split", "test", "--json", cwd=work))
    acc = json.loads(ev.stdout)["accuracy"]
    assert 0.0 <= acc <= 1.0
    got = streamed(cli(train, "run", made["tflite"], "-", input=made["samples"].read_text(), cwd=work))
    assert got.shape == (4, 4) and np.abs(got - reference(made["tflite"], made["samples"])).max() <= 1e-5
    ok(cli(train, "inspect", made["tflite"], cwd=work))
    needs(cli(train, "inspect", made["onnx"], cwd=work), "onnx")  # its metadata is read with onnxruntime
    needs(cli(train, "run", made["onnx"], "-", input="", cwd=work), "onnx")
    needs(cli(train, "deploy", made["tflite"], "--host", "dev@127.0.0.1", cwd=work), "deploy")
    needs(cli(train, "quantize", made["model"], "--format", "onnx", "-o", work / "q", cwd=work), "onnx")
    assert not (work / "q").exists()


def test_base_install_samples_helps_and_names_every_other_extra(made, extra_venv, activity_csv):
    base, work = extra_venv("base"), made["work"]
    ok(cli(base, "sample", "base-data", cwd=work))
    assert (work / "base-data" / "activity.csv").read_bytes() == sample_bytes(work)
    from edgelstm.cli import COMMANDS

    for name in COMMANDS:  # -h and --help of every command, in the smallest install: no backend is imported
        short, long = ok(cli(base, name, "-h", cwd=work)), ok(cli(base, name, "--help", cwd=work))
        assert short.stdout == long.stdout and "Usage: edgelstm" in short.stdout, name
    m, tfl, onx = made["model"], made["tflite"], made["onnx"]
    for args, extra in (
        (("train", "base-data/activity.csv", "-o", "t"), "train"),
        (("convert", m, "--to", "tflite", "-o", "c"), "train"),
        (("inspect", tfl), "device"),
        (("check", tfl, "--target", "linux-x86_64"), "device"),
        (("evaluate", tfl, "--split", "test"), "device"),
        (("run", tfl, f"file:{made['samples']}"), "device"),
        (("bench", tfl), "device"),
        (("inspect", onx), "onnx"),
        (("check", onx, "--target", "linux-x86_64"), "onnx"),
        (("run", onx, f"file:{made['samples']}"), "onnx"),
        (("deploy", tfl, "--host", "dev@127.0.0.1"), "deploy"),
    ):
        needs(cli(base, *args, cwd=work), extra)
    assert not (work / "t").exists() and not (work / "c").exists()


def test_device_extra_runs_inspects_checks_and_evaluates_tflite(made, device_python, extra_venv):
    dev, work, tfl = device_python.parent, made["work"], made["tflite"]
    got = streamed(cli(dev, "run", tfl, "-", input=made["samples"].read_text(), cwd=work))
    assert got.shape == (4, 4) and np.abs(got - reference(tfl, made["samples"])).max() <= 1e-5
    assert ok(cli(dev, "inspect", tfl, cwd=work)).stdout.startswith(f"{tfl}: tflite")
    assert "fits target linux-x86_64" in ok(cli(dev, "check", tfl, "--target", "linux-x86_64", cwd=work)).stdout
    ev = ok(cli(dev, "evaluate", tfl, "--split", "test", "--json", cwd=work))
    train_ev = ok(cli(extra_venv("train"), "evaluate", tfl, "--split", "test", "--json", cwd=work))
    assert json.loads(ev.stdout)["accuracy"] == json.loads(train_ev.stdout)["accuracy"]
    assert "steps/s" in ok(cli(dev, "bench", tfl, "--count", "50", "--warmup", "5", cwd=work)).stdout
    needs(cli(dev, "train", "data/activity.csv", "-o", "t", cwd=work), "train")
    needs(cli(dev, "inspect", made["onnx"], cwd=work), "onnx")
    needs(cli(dev, "run", made["onnx"], "-", input="", cwd=work), "onnx")
    needs(cli(dev, "deploy", tfl, "--host", "dev@127.0.0.1", cwd=work), "deploy")


def test_onnx_extra_runs_inspects_and_checks_onnx(made, extra_venv):
    onx_venv, work, onx = extra_venv("onnx"), made["work"], made["onnx"]
    got = streamed(cli(onx_venv, "run", onx, "-", input=made["samples"].read_text(), cwd=work))
    assert got.shape == (4, 4) and np.abs(got - reference(made["tflite"], made["samples"])).max() <= 1e-4
    info = json.loads(ok(cli(onx_venv, "inspect", onx, "--json", cwd=work)).stdout)
    assert info["format"] == "onnx" and info["metadata"]["kind"] == "step"
    ok(cli(onx_venv, "check", onx, "--target", "linux-x86_64", cwd=work))
    ev = ok(cli(onx_venv, "evaluate", onx, "--split", "test", "--json", "--model-dir", made["model"], cwd=work))
    assert 0.0 <= json.loads(ev.stdout)["accuracy"] <= 1.0
    needs(cli(onx_venv, "run", made["tflite"], "-", input="", cwd=work), "device")
    needs(cli(onx_venv, "convert", made["model"], "--to", "onnx", "-o", "c", cwd=work), "train")


def test_deploy_extra_deploys_over_ssh_without_a_runtime_wheel(made, extra_venv, edgelstm_wheel, ssh_home, sshd):
    """A wheel install has no source tree to build the device's wheel from: it writes one from its own installed
    files; the device installs it, the health check passes, and every module on the device is the wheel's."""
    venv, work, tfl = extra_venv("deploy"), made["work"], made["tflite"]
    assert "--runtime-wheel" in ok(cli(venv, "deploy", "-h", cwd=work)).stdout
    with open(ssh_home / ".ssh" / "known_hosts", "a") as f:
        f.write(sshd.known_hosts_line())
    p = ok(cli(venv, "deploy", tfl, "--host", sshd.spec, cwd=work))
    assert "installing the edgelstm 0.1.0 runtime" in p.stderr
    assert "health check passed" in p.stderr and "max |Δ| 0)" in p.stderr, p.stderr
    (sent,) = (sshd.home / ".edgelstm" / "wheels").glob("edgelstm-*.whl")
    with zipfile.ZipFile(sent) as a, zipfile.ZipFile(edgelstm_wheel) as b:
        mods = {n for n in b.namelist() if not n.startswith("edgelstm-")}
        assert {n for n in a.namelist() if not n.startswith("edgelstm-")} == mods
        assert all(a.read(n) == b.read(n) for n in mods)
    device_py = sshd.home / ".edgelstm" / "venv" / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    probe = [str(device_py), "-c", "import edgelstm; print(edgelstm.__file__)"]
    where = subprocess.run(probe, capture_output=True, cwd=sshd.home, env=env)
    assert where.stdout.decode().startswith(str(sshd.home / ".edgelstm" / "venv"))
    needs(cli(venv, "train", "data/activity.csv", "-o", "t", cwd=work), "train")
    needs(cli(venv, "inspect", made["onnx"], cwd=work), "onnx")
