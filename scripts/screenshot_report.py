"""Save a screenshot of an svchunt HTML report: `python scripts/screenshot_report.py REPORT.html OUT.png`.

Uses the same headless Chromium launch as the browser tests (svchunt.outputs.browser).
"""

from __future__ import annotations

import sys

from svchunt.outputs.browser import missing, screenshot


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: screenshot_report.py REPORT.html OUT.png", file=sys.stderr)
        return 2
    reason = missing()
    if reason:
        print(f"cannot take a screenshot: {reason}", file=sys.stderr)
        return 1
    screenshot(argv[0], argv[1])
    print(f"wrote {argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
