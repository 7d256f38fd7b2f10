"""Screenshots the browser tests take, kept for the docs when asked.

``KT_SCREENSHOTS=docs/img pytest tests/test_report.py tests/graph/test_graph_html.py -k chromium``
copies them to ``docs/img`` (the pictures the README shows); without the
variable they stay in the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def keep_screenshot(shot: Path, name: str) -> None:
    """Copy a screenshot to $KT_SCREENSHOTS/name when that variable is set.

    Args:
        shot: the PNG the test took.
        name: file name under the target directory.
    """
    target = os.environ.get("KT_SCREENSHOTS")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, Path(target) / name)
