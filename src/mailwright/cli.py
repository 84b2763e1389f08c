"""Command line (filled in by the command-line issue)."""


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("mailwright: the command line is not built yet")
