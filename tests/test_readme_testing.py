"""Every example of README's "Testing your code" section runs, as written.

A block that defines tests is written to the file its first line names and run by pytest
(with mailwright's plugin, as in a user's project); the others are scripts, run with
Python in their own process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

README = Path(__file__).resolve().parent.parent / "README.md"
INI = """
[pytest]
asyncio_default_fixture_loop_scope = function
addopts = -p no:cacheprovider -p no:hypothesispytest
"""


def section_blocks() -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Testing your code\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], re.DOTALL)


def test_the_section_has_test_files_and_a_script() -> None:
    blocks = section_blocks()
    test_files = [b for b in blocks if b.startswith("# test_")]
    assert len(test_files) >= 5
    assert len(blocks) - len(test_files) >= 1


def test_readme_test_files_pass(pytester: pytest.Pytester) -> None:
    pytester.makeini(INI)
    expected = 0
    for block in section_blocks():
        first = block.splitlines()[0]
        if not first.startswith("# test_"):
            continue
        name = first.removeprefix("# ").strip()
        (pytester.path / name).write_text(block, encoding="utf-8")
        expected += len(re.findall(r"^\s*(?:async )?def test_", block, re.MULTILINE))
    # in a process of its own: the examples configure() mailwright as an app would
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=expected)


def test_readme_scripts_run(tmp_path: Path) -> None:
    scripts = [b for b in section_blocks() if not b.startswith("# test_")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMAIL_")}
    for number, block in enumerate(scripts):
        path = tmp_path / f"script_{number}.py"
        path.write_text(block, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, env=env, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
    assert "Nightly report cron@example.com ['ops@example.com']" in result.stdout
