"""Sandboxed execution: generated code runs in a subprocess with limits, never in the test process."""

from __future__ import annotations

import os
import time

from jacobi_forcing_hf.evaluation.execution import run_python_sandboxed


def test_a_correct_program_passes():
    assert run_python_sandboxed("def f(x):\n    return x * 2\nassert f(3) == 6\n").passed


def test_a_failing_assertion_fails_with_its_error():
    result = run_python_sandboxed("assert 1 + 1 == 3, 'arithmetic is broken'")
    assert result.status == "failed"
    assert "AssertionError: arithmetic is broken" in result.detail


def test_an_infinite_loop_is_killed_by_the_timeout():
    start = time.monotonic()
    result = run_python_sandboxed("while True:\n    pass\n", timeout_s=1.0)
    assert result.status == "timed out"
    assert not result.passed
    assert time.monotonic() - start < 30  # killed, not waited for


def test_a_sleeping_child_process_is_killed_with_the_program(tmp_path):
    marker = tmp_path / "child-survived"
    child = tmp_path / "child.py"
    child.write_text(f"import time\ntime.sleep(3)\nopen({str(marker)!r}, 'w').close()\n")
    program = f"import subprocess, sys\nsubprocess.Popen([sys.executable, {str(child)!r}])\nwhile True:\n    pass\n"
    assert run_python_sandboxed(program, timeout_s=1.0).status == "timed out"
    time.sleep(3.5)
    assert not marker.exists()


def test_an_early_successful_exit_is_not_a_pass():
    result = run_python_sandboxed("import sys\nsys.exit(0)\nassert False\n")
    assert result.status == "failed"
    assert "exited before" in result.detail


def test_main_guard_blocks_of_generated_code_do_not_run():
    assert run_python_sandboxed("if __name__ == '__main__':\n    raise SystemExit(1)\n").passed


def test_memory_blow_up_fails_without_hurting_the_harness():
    result = run_python_sandboxed("blob = bytearray(8 << 30)\n", memory_mb=512)
    assert result.status == "failed"
    assert "MemoryError" in result.detail


def test_runaway_output_is_stopped():
    result = run_python_sandboxed("while True:\n    print('x' * 1000)\n", timeout_s=20)
    assert result.status == "failed"  # the file-size limit kills the program long before the timeout


def test_the_program_cannot_change_the_harness_process():
    cwd = os.getcwd()
    run_python_sandboxed("import os\nos.chdir('/')\nos.environ['JF_SANDBOX_LEAK'] = '1'\n")
    assert os.getcwd() == cwd
    assert "JF_SANDBOX_LEAK" not in os.environ
