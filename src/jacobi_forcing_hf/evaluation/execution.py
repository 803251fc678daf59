"""Run generated Python code in a separate, resource-limited subprocess with a timeout.

Model-written code never runs inside the harness process. Each program is written to a fresh temporary
folder and run by a new interpreter (``python -I``: no user site, no ``PYTHON*`` environment) in its own
session, with a minimal environment, no stdin, output to size-limited files, and limits on address space, CPU
time, file size and core dumps, applied by a small launcher before the program starts. On timeout the whole
process group is killed.

This protects the harness from hangs, crashes, memory blow-ups and runaway output. It is not a security
boundary against deliberately malicious code (a process running as root can raise its own limits): evaluate
untrusted models inside a container or VM.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MEMORY_MB = 2048
_MAX_OUTPUT_BYTES = 1 << 20  # per stream; writing more kills the program (SIGXFSZ)
_ERROR_TAIL_CHARS = 400

# The launcher sets the limits, runs the program, and writes the run's nonce to a file only if the program
# returned normally: a program that exits early with status 0 (sys.exit(0) before the tests) does not pass.
# The program runs under a name other than "__main__" (like HumanEval's own harness), so the
# `if __name__ == "__main__":` blocks of generated code do not run. Settings come through argv, never
# interpolated into code.
_LAUNCHER = """\
import resource, runpy, sys
memory_bytes, cpu_seconds, file_bytes = (int(value) for value in sys.argv[1:4])
program, nonce = sys.argv[4:6]
sys.argv = [program]
resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
runpy.run_path(program, run_name="__sandboxed__")
with open("completed", "w") as marker:
    marker.write(nonce)
"""


@dataclass(frozen=True)
class ExecutionResult:
    """Outcome of one sandboxed run.

    Attributes:
        status: ``"passed"`` (ran to its end), ``"failed"`` (an exception, a non-zero exit, or an early
            exit) or ``"timed out"``.
        detail: the last lines of the program's stderr (the exception) or a note on the timeout.
    """

    status: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def run_python_sandboxed(
    source: str, *, timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB
) -> ExecutionResult:
    """Run ``source`` as a Python program in a resource-limited subprocess.

    Passed means the program ran to its end without an exception (exit code 0 and the completion marker).

    Example:
        >>> run_python_sandboxed("assert 1 + 1 == 2").status
        'passed'
        >>> run_python_sandboxed("while True: pass", timeout_s=0.5).status
        'timed out'
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}.")
    with tempfile.TemporaryDirectory(prefix="jf-sandbox-") as folder:
        workdir = Path(folder)
        (workdir / "launcher.py").write_text(_LAUNCHER)
        (workdir / "program.py").write_text(source)
        limits = (memory_mb << 20, int(timeout_s) + 1, _MAX_OUTPUT_BYTES)
        nonce = secrets.token_hex(16)
        command = [
            sys.executable,
            "-I",
            "-B",
            "launcher.py",
            *(str(value) for value in limits),
            "program.py",
            nonce,
        ]
        with open(workdir / "stdout", "wb") as stdout, open(workdir / "stderr", "wb") as stderr:
            process = subprocess.Popen(
                command,
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=_minimal_environment(workdir),
                start_new_session=True,
            )
            try:
                return_code = process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(process)
                return ExecutionResult("timed out", f"killed after {timeout_s:g} s")
            finally:
                _kill_group(process)  # children the program left behind
        marker = workdir / "completed"
        completed = marker.is_file() and marker.read_text(errors="replace") == nonce
        if return_code == 0 and completed:
            return ExecutionResult("passed")
        if return_code == 0:
            return ExecutionResult("failed", "the program exited before reaching its end")
        return ExecutionResult("failed", _error_tail(workdir / "stderr", return_code))


def _minimal_environment(workdir: Path) -> dict[str, str]:
    return {
        "PATH": os.defpath,
        "HOME": str(workdir),
        "TMPDIR": str(workdir),
        "PYTHONHASHSEED": "0",
        "PYTHONIOENCODING": "utf-8",
        "OMP_NUM_THREADS": "1",
    }


def _kill_group(process: subprocess.Popen) -> None:
    """Kill the session the program runs in (it was started with ``start_new_session``), then reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _error_tail(stderr_path: Path, return_code: int) -> str:
    text = stderr_path.read_bytes()[-4 * _ERROR_TAIL_CHARS :].decode("utf-8", errors="replace").strip()
    lines = [line for line in text.splitlines() if line.strip()]
    if lines:
        return lines[-1][-_ERROR_TAIL_CHARS:]
    if return_code < 0:
        return f"killed by signal {signal.Signals(-return_code).name}"
    return f"exit code {return_code}"
