"""Writing one section of ``benchmarks/RESULTS.md`` without touching the others.

Every benchmark owns one ``## Heading`` section; several may finish at nearly the same time, so
the file is re-read just before it is written.
"""

from __future__ import annotations

from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def write_section(path: Path, heading: str, section: str) -> None:
    """Replace the section that starts with ``heading`` in ``path``, or append it.

    Parameters
    ----------
    path : Path
        The results file (created with a title when missing).
    heading : str
        The section's first line prefix, e.g. ``"## Scale"``; the section runs to the next
        ``## `` heading.
    section : str
        The new text, starting with its heading.
    """
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    start = text.find(heading)
    if start == -1:
        text = text.rstrip() + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = text.find("\n## ", start + len(heading))
        rest = "" if end == -1 else "\n" + text[end + 1 :]
        text = text[:start] + section.rstrip("\n") + "\n" + rest
    path.write_text(text)
