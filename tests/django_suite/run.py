"""Run Django's own mail tests (``tests/mail/`` of Django's source) against mailwright.

    python tests/django_suite/run.py [--cache DIR] [--verbose]

The tests are those of the Django that is installed: Django 5.2 (Python 3.11 and up)
or Django 6.1 (Python 3.12 and up). Django's source distribution of exactly that
version is fetched with pip once and kept in the cache directory
(``$MAILWRIGHT_CACHE_DIR/django``, default ``~/.cache/mailwright/django``). The tests run
with Django's own test runner, with ``django.core.mail`` aliased to mailwright
(``alias.py``) and Django settings that say nothing about mail (``settings.py``).

Every test must pass, or be listed in ``expected_failures_<version>.txt`` with the README
section that documents the difference and a one-line reason. The run fails on a failure
that is not listed, on a listed test that passes now (take it off the list: it only
shrinks), on a listed test that no longer exists, and on a README section that does not
exist.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import subprocess
import sys
import tarfile
import traceback
import unittest
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
#: The Django series whose tests/mail runs here.
SERIES = ("5.2", "6.1")
README = ROOT / "README.md"


def django_series() -> tuple[str, str]:
    """The installed Django's series ("6.1") and exact version ("6.1.3")."""
    import django

    series = f"{django.VERSION[0]}.{django.VERSION[1]}"
    if series not in SERIES:
        raise SystemExit(
            f"Django {django.__version__} is installed; this runs the tests of Django "
            f"{' or '.join(SERIES)}"
        )
    return series, django.__version__


def expected_path(series: str) -> Path:
    return HERE / f"expected_failures_{series}.txt"


@dataclass(frozen=True)
class Expected:
    test: str
    section: str
    reason: str


def read_expected(path: Path) -> dict[str, Expected]:
    """``test id | README section | reason`` lines; ``#`` starts a comment."""
    entries: dict[str, Expected] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = [part.strip() for part in line.split("|")]
        if len(parts) != 3 or not all(parts):
            raise SystemExit(f"{path.name}:{number}: expected 'test | README section | reason'")
        test, section, reason = parts
        if test in entries:
            raise SystemExit(f"{path.name}:{number}: {test} is listed twice")
        entries[test] = Expected(test, section, reason)
    return entries


def readme_sections(path: Path = README) -> set[str]:
    return {m[1].strip() for m in re.finditer(r"(?m)^#{2,4} (.+)$", path.read_text())}


def cache_dir(option: str | None) -> Path:
    if option:
        return Path(option)
    base = os.environ.get("MAILWRIGHT_CACHE_DIR") or Path.home() / ".cache" / "mailwright"
    return Path(base) / "django"


def django_tests(cache: Path, version: str) -> Path:
    """The ``tests`` directory of Django ``version``'s source, holding ``mail/``;
    fetched once."""
    cache.mkdir(parents=True, exist_ok=True)
    archive = cache / f"django-{version}.tar.gz"
    if not archive.exists():
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-binary", ":all:",
             "--no-deps", "--dest", str(cache), f"django=={version}"],
            check=True,
        )  # fmt: skip
    if not archive.exists():
        raise SystemExit(f"pip download left no {archive.name} in {cache}")
    source = cache / f"django-{version}"
    tests = source / "tests"
    if not (tests / "mail" / "tests.py").exists():
        prefix = f"{source.name}/tests/mail/"
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
            tar.extractall(cache, members=members, filter="data")
    return tests


class Outcomes:
    """What happened to each test: "pass", "fail", "skip" (first failure wins)."""

    def __init__(self) -> None:
        self.status: dict[str, str] = {}
        self.details: dict[str, list[str]] = {}
        self.problems: list[str] = []  # errors outside a test (setUpClass...)

    def record(self, test: unittest.TestCase, status: str, detail: str | None = None) -> None:
        test_id = test.id()
        if not isinstance(test, unittest.TestCase) or " " in test_id:
            self.problems.append(f"{test_id}\n{detail or ''}")
            return
        if self.status.get(test_id) != "fail":
            self.status[test_id] = status
        if detail:
            self.details.setdefault(test_id, []).append(detail)


OUTCOMES = Outcomes()


class RecordingResult(unittest.TextTestResult):
    """Records each outcome; prints only the failures nobody expected (run.py's
    summary), not the ones the list explains."""

    def printErrors(self) -> None:
        pass

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        OUTCOMES.record(test, "pass")

    def addFailure(self, test, err) -> None:  # type: ignore[no-untyped-def]
        super().addFailure(test, err)
        OUTCOMES.record(test, "fail", self._exc_info_to_string(err, test))

    def addError(self, test, err) -> None:  # type: ignore[no-untyped-def]
        super().addError(test, err)
        OUTCOMES.record(test, "fail", self._exc_info_to_string(err, test))

    def addSubTest(self, test, subtest, err) -> None:  # type: ignore[no-untyped-def]
        super().addSubTest(test, subtest, err)
        if err is not None:
            detail = f"{subtest.id()}\n{self._exc_info_to_string(err, test)}"
            OUTCOMES.record(test, "fail", detail)

    def addSkip(self, test: unittest.TestCase, reason: str) -> None:
        super().addSkip(test, reason)
        # A subtest Django skips counts for its test (which then passes or fails as
        # its other parts do).
        OUTCOMES.record(getattr(test, "test_case", test), "skip", reason)

    def addExpectedFailure(self, test, err) -> None:  # type: ignore[no-untyped-def]
        super().addExpectedFailure(test, err)
        OUTCOMES.record(test, "pass")

    def addUnexpectedSuccess(self, test: unittest.TestCase) -> None:
        super().addUnexpectedSuccess(test)
        OUTCOMES.record(test, "fail", "unexpected success")


def run_suite(tests_dir: Path, verbosity: int) -> list[str]:
    """Run ``mail`` with Django's runner; return the ids of the tests found."""
    sys.path[:0] = [str(tests_dir), str(HERE.parent)]
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_suite.settings"
    from django_suite import alias

    alias.install()  # before Django imports its mail module

    import django
    from django.test.runner import DiscoverRunner

    django.setup()
    # aiosmtpd logs the TLS handshake a test sends to its plain server, in binary.
    logging.getLogger("mail.log").setLevel(logging.CRITICAL)

    class Runner(DiscoverRunner):
        def get_resultclass(self):  # type: ignore[no-untyped-def]
            return RecordingResult

        def get_test_runner_kwargs(self):  # type: ignore[no-untyped-def]
            kwargs = super().get_test_runner_kwargs()
            if not verbosity:  # unittest's own tally counts subtests: run.py's is clearer
                kwargs["stream"] = open(os.devnull, "w")  # noqa: SIM115
            return kwargs

    runner = Runner(verbosity=verbosity, interactive=False, top_level=str(tests_dir))
    runner.setup_test_environment()
    try:
        suite = runner.build_suite(["mail"])
        found = [test.id() for test in _flatten(suite)]
        runner.run_suite(suite)
    finally:
        runner.teardown_test_environment()
    return found


def _flatten(suite: unittest.TestSuite) -> list[unittest.TestCase]:
    tests = []
    for item in suite:
        if isinstance(item, unittest.TestSuite):
            tests.extend(_flatten(item))
        else:
            tests.append(item)
    return tests


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", help="where Django's source is kept between runs")
    parser.add_argument("--verbose", action="store_true", help="list every test")
    args = parser.parse_args()

    series, version = django_series()
    expected_file = expected_path(series)
    expected = read_expected(expected_file)
    sections = readme_sections()
    tests_dir = django_tests(cache_dir(args.cache), version)
    found = run_suite(tests_dir, 2 if args.verbose else 0)

    status = OUTCOMES.status
    failed = [t for t in found if status.get(t) == "fail"]
    not_run = [t for t in found if t not in status]
    passed = [t for t in found if status.get(t) == "pass"]
    skipped = [t for t in found if status.get(t) == "skip"]
    unexpected = [t for t in failed if t not in expected]
    fixed = [t for t in found if status.get(t) == "pass" and t in expected]
    stale = [t for t in expected if t not in found]
    bad_sections = sorted({e.section for e in expected.values()} - sections)

    print(f"\nDjango {version} tests/mail against mailwright: "
          f"{len(passed)} of {len(found)} passed, {len(failed)} failed "
          f"({len(failed) - len(unexpected)} expected), {len(skipped)} skipped")  # fmt: skip
    by_reason: dict[tuple[str, str], list[str]] = {}
    for test in failed:
        if test in expected:
            entry = expected[test]
            by_reason.setdefault((entry.section, entry.reason), []).append(test)
    for (section, reason), tests in sorted(by_reason.items(), key=lambda item: -len(item[1])):
        print(f"  {len(tests):3}  {reason}  [README: {section}]")

    problems = []
    for test in unexpected:
        problems.append(f"UNEXPECTED FAILURE {test}\n" + "\n".join(OUTCOMES.details.get(test, [])))
    for test in fixed:
        problems.append(f"PASSES NOW (remove it from {expected_file.name}): {test}")
    for test in stale:
        problems.append(f"LISTED BUT NOT FOUND (remove it from {expected_file.name}): {test}")
    for test in not_run:
        problems.append(f"NOT RUN: {test}")
    for section in bad_sections:
        problems.append(f"README has no section {section!r} (named in {expected_file.name})")
    problems.extend(f"ERROR OUTSIDE A TEST: {p}" for p in OUTCOMES.problems)
    for problem in problems:
        print("\n" + problem)
    if problems:
        print(f"\nDjango's mail tests: {len(problems)} problem(s)")
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.exit(130)
