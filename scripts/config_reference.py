#!/usr/bin/env python3
"""Write the configuration reference (appliance.config.reference.markdown()) into README.md,
between its markers. `--check` only says whether README.md is up to date (exit 1 if not)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from appliance.config.reference import END, START, markdown  # noqa: E402


def main(argv: list[str]) -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    begin, end = text.find(START), text.find(END)
    if begin < 0 or end < begin:
        print(f"{readme}: the markers {START!r} ... {END!r} are missing", file=sys.stderr)
        return 2
    updated = text[:begin] + markdown() + text[end + len(END) + 1 :]
    if "--check" in argv:
        if updated != text:
            print(f"{readme}: the configuration reference is out of date; run {sys.argv[0]}", file=sys.stderr)
            return 1
        return 0
    readme.write_text(updated)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
