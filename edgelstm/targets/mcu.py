"""Microcontroller checks of a C folder (`convert --to c`): build it, measure it, run it (host side).

Flash and RAM come from the built object (arm-none-eabi-size; the stack from gcc's -fstack-usage), not from a
formula. The same self-checking harness (inputs from an integer LCG scaled by the model's own normalization, so no
data file is needed) is built for the host and for the target CPU and run under qemu-system-arm with semihosting;
the two output streams must agree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError, RuntimeUnavailable

HOST_FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2"]
ARM_CC, ARM_SIZE, QEMU = "arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"
APT_HINT = "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm"
QEMU_TIMEOUT = 120.0

# A vector table at address 0 (qemu's M-profile reset reads SP and PC there), the FPU switched on (CPACR), then
# newlib's semihosting start-up (rdimon), which zeroes .bss and calls main; exit() ends qemu with main's status.
STARTUP_C = """\
extern void _start(void);
void edgelstm_reset(void);
__attribute__((noreturn)) static void edgelstm_fault(void)
{
    for (;;) {
    }
}
__attribute__((section(".vectors"), used)) static void (*const edgelstm_vectors[16])(void) = {
    (void (*)(void))STACK_TOP, edgelstm_reset, edgelstm_fault, edgelstm_fault, edgelstm_fault, edgelstm_fault,
    edgelstm_fault, 0, 0, 0, 0, edgelstm_fault, edgelstm_fault, 0, edgelstm_fault, edgelstm_fault};
void edgelstm_reset(void)
{
#ifdef __ARM_FP
    *(volatile unsigned *)0xE000ED88u |= (0xFu << 20); /* CPACR: CP10, CP11 full access */
    __asm volatile("dsb\\n isb");
#endif
    _start();
}
"""

# The harness: N_STEPS pseudo-random raw samples (mean + std * u, u uniform in [-2, 2) from a 32-bit LCG: the
# same floats on every CPU), one output line per step (a BiLSTM: per window of consecutive samples).
HARNESS_C = """\
#include <stdio.h>

#include "PREFIX.h"

#ifdef EDGELSTM_SYSTICK
/* SysTick at the CPU clock; under qemu -icount shift=0 it counts executed instructions (4000 nops calibrate it) */
#define SYST_CSR (*(volatile unsigned *)0xE000E010u)
#define SYST_RVR (*(volatile unsigned *)0xE000E014u)
#define SYST_CVR (*(volatile unsigned *)0xE000E018u)
#define TICK_START() (t0 = SYST_CVR)
#define TICK_STOP() (ticks += (t0 - SYST_CVR) & 0xFFFFFFu)
#else
#define TICK_START()
#define TICK_STOP()
#endif

static unsigned long seed = 12345u;
static float next_u(void)
{
    seed = (seed * 1103515245u + 12345u) & 0xFFFFFFFFu;
    return (float)((seed >> 8) & 0xFFFFu) / 16384.0f - 2.0f;
}

static void sample(float *x)
{
    int k;
    for (k = 0; k < UPPER_N_FEATURES; ++k) {
        x[k] = PREFIX_norm_mean[k] + PREFIX_norm_std[k] * next_u();
    }
}

int main(void)
{
    PREFIX_state st;
    float y[UPPER_N_OUTPUTS];
    int t, j;
#ifdef EDGELSTM_SYSTICK
    unsigned long ticks = 0, t0;
    SYST_RVR = 0xFFFFFFu;
    SYST_CVR = 0u;
    SYST_CSR = 5u;
    TICK_START();
    __asm volatile(".rept 4000\\n nop\\n .endr");
    TICK_STOP();
    printf("# calibration %lu\\n", ticks);
    ticks = 0;
#endif
#if UPPER_BIDIRECTIONAL
    static float win[UPPER_WINDOW * UPPER_N_FEATURES];
    int k;
    for (t = 0; t < N_STEPS; ++t) {
        for (k = 0; k < UPPER_WINDOW; ++k) {
            sample(win + k * UPPER_N_FEATURES);
        }
        TICK_START();
        PREFIX_window(&st, win, y);
        TICK_STOP();
#else
    float x[UPPER_N_FEATURES];
    PREFIX_reset(&st);
    for (t = 0; t < N_STEPS; ++t) {
        sample(x);
        TICK_START();
        PREFIX_step(&st, x, y);
        TICK_STOP();
#endif
        for (j = 0; j < UPPER_N_OUTPUTS; ++j) {
            printf(j ? " %.9g" : "%.9g", (double)y[j]);
        }
        printf("\\n");
    }
#ifdef EDGELSTM_SYSTICK
    printf("# ticks %lu\\n", ticks);
#endif
    return 0;
}
"""


@dataclass
class Sizes:
    """What the model costs on the target, in bytes, measured from its object file."""

    text: int
    data: int
    bss: int
    state: int
    stack: int
    frames: dict[str, int] = field(default_factory=dict)

    @property
    def flash(self) -> int:
        return self.text + self.data  # weights (.rodata sits in .text for arm-none-eabi-size) + code

    @property
    def ram(self) -> int:
        return self.data + self.bss + self.state + self.stack


def find_prefix(folder: Path) -> str:
    """The prefix of a C folder written by `convert --to c` (PREFIX.h beside PREFIX.c)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder (a C folder from `convert --to c` was expected)")
    names = sorted(h.stem for h in folder.glob("*.h") if (folder / f"{h.stem}.c").is_file())
    if len(names) != 1:
        raise InputError(f"{folder}: expected one PREFIX.h with its PREFIX.c (from `convert --to c`), found {names}")
    return names[0]


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if not path:
        raise RuntimeUnavailable(f"{tool} is not installed ({APT_HINT})")
    return path


def _run(cmd: list[str], what: str, **kw) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        msg = (res.stderr or res.stdout).strip().splitlines()
        raise InputError(f"{what} failed: {msg[0] if msg else f'exit {res.returncode}'}")
    return res


def harness(prefix: str, n_steps: int) -> str:
    return (
        HARNESS_C.replace("PREFIX", prefix)
        .replace("UPPER", prefix.upper())
        .replace("N_STEPS", str(int(n_steps)))
        .replace('#include "' + prefix + '.h"', f'#include "{prefix}.h"')
    )


def build_host(folder: Path, out: Path, cc: str = "gcc", defines: tuple[str, ...] = ()) -> Path:
    """The folder's example (stdin → stdout) with the host compiler and the strict flags."""
    prefix = find_prefix(folder)
    cmd = [_need(cc), *HOST_FLAGS, *(f"-D{d}" for d in defines), "-o", str(out)]
    cmd += [str(folder / f"{prefix}.c"), str(folder / "example" / "stream_main.c"), "-lm"]
    _run(cmd, f"{cc} build of {folder}")
    return out


def stream_host(binary: Path, X: np.ndarray) -> np.ndarray:
    """Raw samples [T, F] through the example binary, one stdin line each; its output lines as an array."""
    text = "\n".join(",".join(f"{v:.9g}" for v in row) for row in np.asarray(X, np.float64)) + "\n"
    res = _run([str(binary)], f"{binary.name}", input=text, timeout=120)
    return parse_rows(res.stdout)


def parse_rows(text: str) -> np.ndarray:
    rows = [[float(v) for v in line.split()] for line in text.splitlines() if line.strip() and line[0] != "#"]
    return np.array(rows, np.float64)


def _harness_sources(folder: Path, work: Path, n_steps: int, stack_top: int | None) -> list[str]:
    prefix = find_prefix(folder)
    (work / "harness.c").write_text(harness(prefix, n_steps))
    srcs = [str(work / "harness.c"), str(folder / f"{prefix}.c")]
    if stack_top is not None:
        (work / "startup.c").write_text(STARTUP_C.replace("STACK_TOP", f"0x{stack_top:08x}u"))
        srcs.insert(0, str(work / "startup.c"))
    return srcs


def run_harness_host(folder: Path, n_steps: int = 200) -> np.ndarray:
    """The harness built with gcc (strict flags) and run: the reference for the target's run."""
    with tempfile.TemporaryDirectory(prefix="edgelstm-mcu-") as tmp:
        work = Path(tmp)
        srcs = _harness_sources(folder, work, n_steps, None)
        _run([_need("gcc"), *HOST_FLAGS, f"-I{folder}", "-o", str(work / "h"), *srcs, "-lm"], "gcc harness build")
        return parse_rows(_run([str(work / "h")], "host harness", timeout=120).stdout)


def run_harness_qemu(folder: Path, target, n_steps: int = 200, elf_out: Path | None = None) -> tuple[np.ndarray, float]:
    """The harness cross-built for the target's CPU (strict flags) and run under qemu-system-arm, printing
    through semihosting: (outputs, instructions per step). qemu runs with -icount shift=0 (one instruction per
    virtual ns), so SysTick counts instructions; 4000 nops calibrate the ratio (40 on mps2: a 25 MHz clock)."""
    cc, qemu = _need(ARM_CC), _need(QEMU)
    with tempfile.TemporaryDirectory(prefix="edgelstm-mcu-") as tmp:
        work = Path(tmp)
        srcs = _harness_sources(folder, work, n_steps, target.qemu_stack_top)
        elf = elf_out or work / "h.elf"
        cmd = [cc, *target.cflags, *HOST_FLAGS, "-DEDGELSTM_SYSTICK", f"-I{folder}", "--specs=rdimon.specs"]
        cmd += ["-Wl,--section-start=.vectors=0x0", "-o", str(elf), *srcs, "-lm"]
        _run(cmd, f"{ARM_CC} harness build")
        run = [qemu, "-M", target.qemu_machine, "-icount", "shift=0", "-nographic", "-monitor", "none"]
        run += ["-serial", "none"]
        run += ["-semihosting-config", "enable=on,target=native", "-kernel", str(elf)]
        try:
            res = _run(run, f"qemu {target.qemu_machine}", timeout=QEMU_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise InputError(f"qemu {target.qemu_machine}: no exit within {QEMU_TIMEOUT:.0f} s") from None
        counts = dict(re.findall(r"^# (calibration|ticks) (\d+)$", res.stdout, re.M))
        if set(counts) != {"calibration", "ticks"} or int(counts["calibration"]) == 0:
            raise InputError(f"qemu {target.qemu_machine}: the harness printed no SysTick counts")
        per_tick = 4000.0 / int(counts["calibration"])
        return parse_rows(res.stdout), int(counts["ticks"]) * per_tick / n_steps


_SIZE = re.compile(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+[0-9a-f]+\s+(\S+)\s*$", re.M)


def _size(obj: Path) -> tuple[int, int, int]:
    out = _run([_need(ARM_SIZE), str(obj)], ARM_SIZE).stdout
    m = _SIZE.search(out)
    if not m:
        raise InputError(f"{ARM_SIZE}: unexpected output {out!r}")
    return int(m.group(1)), int(m.group(2)), int(m.group(3))


def measure(folder: Path, target) -> Sizes:
    """Flash and RAM of the model on the target CPU, from the object files: PREFIX.o (code + weights, and any
    .data/.bss: none is expected), a probe object holding one state struct (its .bss = sizeof state), and the
    deepest chain of stack frames gcc reports (-fstack-usage) from step/window down to the leaves."""
    cc = _need(ARM_CC)
    prefix = find_prefix(folder)
    with tempfile.TemporaryDirectory(prefix="edgelstm-size-") as tmp:
        work = Path(tmp)
        obj = work / f"{prefix}.o"
        _run(
            [cc, *target.cflags, *HOST_FLAGS, "-fstack-usage", "-c", str(folder / f"{prefix}.c"), "-o", str(obj)],
            f"{ARM_CC} -c {prefix}.c",
        )
        text, data, bss = _size(obj)
        probe = work / "probe.c"
        probe.write_text(f'#include "{prefix}.h"\n{prefix}_state edgelstm_probe_state;\n')
        _run(
            [cc, *target.cflags, *HOST_FLAGS, "-fno-common", f"-I{folder}", "-c", str(probe), "-o", str(work / "p.o")],
            "probe",
        )
        state = _size(work / "p.o")[2]
        frames = {}
        for line in (work / f"{prefix}.su").read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2:
                frames[parts[0].rsplit(":", 1)[-1]] = int(parts[1])
    cells = [v for k, v in frames.items() if re.fullmatch(r"cell\d+", k)]
    leaves = [frames.get("dot", 0), frames.get("sigm", 0)]
    chain = frames.get(f"{prefix}_step", 0) + max(cells, default=0) + max(leaves)
    chain += frames.get(f"{prefix}_window", 0)
    return Sizes(text, data, bss, state, chain, frames)


@dataclass
class CCheck:
    """`check C_FOLDER --target T`: the measured sizes against the budget, and the target run against the host's."""

    sizes: Sizes
    violations: list[str]
    lines: list[str]
    max_abs_diff: float | None = None
    instructions: float | None = None  # per step (per window for a BiLSTM), counted under qemu


def check_c(folder: Path, target, n_steps: int = 200) -> CCheck:
    """Build, measure and (where the target names a qemu board) run a C folder; every line a user sees."""
    folder = Path(folder)
    find_prefix(folder)
    if "c" not in target.formats or not target.cflags:
        raise InputError(f"target {target.name} does not build C (it runs {', '.join(target.formats)})")
    s = measure(folder, target)
    lines, bad = [], []

    def share(v: int, budget: int) -> str:
        return f" of {budget} budget ({100.0 * v / budget:.1f} %)" if budget else ""

    lines.append(
        f"flash: {s.flash} B (code + weights: .text {s.text}, .data {s.data}){share(s.flash, target.flash_bytes)}"
    )
    lines.append(
        f"RAM: {s.ram} B (state {s.state}, stack {s.stack} on the deepest call chain, .data+.bss {s.data + s.bss})"
        + share(s.ram, target.ram_bytes)
    )
    if target.flash_bytes and s.flash > target.flash_bytes:
        bad.append(f"{folder.name}: flash {s.flash} B exceeds {target.name}'s budget of {target.flash_bytes} B")
    if target.ram_bytes and s.ram > target.ram_bytes:
        bad.append(f"{folder.name}: RAM {s.ram} B exceeds {target.name}'s budget of {target.ram_bytes} B")
    if s.data or s.bss:
        bad.append(
            f"{folder.name}: {s.data + s.bss} B of mutable globals (.data/.bss); the state should be the caller's"
        )
    diff = insns = None
    if target.qemu_machine:
        host = run_harness_host(folder, n_steps)
        dev, insns = run_harness_qemu(folder, target, n_steps)
        if host.shape != dev.shape:
            bad.append(f"{folder.name}: qemu {target.qemu_machine} printed {dev.shape} outputs, the host {host.shape}")
        else:
            diff = float(np.abs(host - dev).max())
            unit = "window" if any(k.endswith("_window") for k in s.frames) else "step"
            lines.append(
                f"qemu {target.qemu_machine}: {len(dev)} {unit}s, max |target - host| {diff:.3g}, "
                f"{insns:,.0f} instructions per {unit}"
            )
            if diff > TARGET_TOL:
                bad.append(f"{folder.name}: outputs on {target.qemu_machine} differ from the host's by {diff:.3g}")
    return CCheck(s, bad, lines, diff, insns if target.qemu_machine else None)


# the target's libm (newlib) and the host's (glibc) round expf/tanhf differently in the last place: measured ≤ 3e-7
TARGET_TOL = 1e-5
