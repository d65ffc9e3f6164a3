"""Rewrite golden outputs from their inputs.

Usage (from the repository root, in the project's virtualenv)::

    python -m tests.golden.regenerate                  # every case
    python -m tests.golden.regenerate quickstart dns_node error_weight_too_high

Each ``tests/golden/input/<case>.yaml`` is expanded exactly as ``tests/test_golden.py`` does and
``tests/golden/output/<case>.json`` is rewritten (the template, or ``{"errorMessage": ...}`` for
``error_`` cases). Read the diff (``git diff tests/golden/output``) before you keep it: a golden file
is only as good as the review of its content against SPEC.md.

Exit status 1 if a case does not behave as its name says (an ``error_`` case that expands, or
another case that fails); its output is then left as it was.
"""

from __future__ import annotations

import argparse
import sys

from . import GoldenCaseError, case_names, input_path, output_path, run_case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.golden.regenerate", description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="*", help="case names (default: all), e.g. quickstart error_port_out_of_range")
    args = parser.parse_args(argv)
    cases: list[str] = [name.removesuffix(".yaml").removesuffix(".json") for name in args.cases] or case_names()
    status = 0
    for case in cases:
        if not input_path(case).exists():
            print(f"{case}: no such input {input_path(case)}", file=sys.stderr)
            status = 1
            continue
        try:
            text = run_case(case)
        except GoldenCaseError as error:
            print(f"FAILED {error}", file=sys.stderr)
            status = 1
            continue
        except Exception as error:  # an internal error of the transform: report it, go on with the others
            print(f"FAILED {case}: {type(error).__name__}: {error}", file=sys.stderr)
            status = 1
            continue
        path = output_path(case)
        before = path.read_text(encoding="utf-8") if path.exists() else None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        print(f"{'unchanged' if before == text else 'written  '} {path.relative_to(path.parents[3])}")
    return status


if __name__ == "__main__":
    sys.exit(main())
