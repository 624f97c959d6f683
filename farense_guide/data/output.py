"""What the data step writes: whole output folders, and text from the data made safe for Markdown tables."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable

from farense_guide.errors import FarenseError

MARKDOWN_ESCAPES = {"\\": "\\\\", "|": "\\|", "`": "\\`", "&": "&amp;", "<": "&lt;", ">": "&gt;"}


def markdown_cell(value) -> str:
    """Text from the data as one Markdown table cell: no pipe, newline, HTML or code span can break the table."""
    text = "".join(MARKDOWN_ESCAPES.get(char, char) for char in str(value))
    return " ".join(text.splitlines())


def check_output_folder(output: Path, inputs: Iterable[Path], force: bool) -> Path:
    """The real path of `output`, once sure that writing it loses nothing the user did not ask to lose."""
    output = Path(os.path.realpath(output))
    for path in inputs:
        source = Path(os.path.realpath(path))
        if output == source or output in source.parents:
            raise FarenseError(f"{output}: a pasta de saída não pode ser a de entrada nem conter a entrada ({path}); "
                               "a entrada nunca é alterada.")
    if output.exists() and not output.is_dir():
        raise FarenseError(f"{output}: já existe e não é uma pasta.")
    if output.is_dir() and any(output.iterdir()):
        if not force:
            raise FarenseError(f"{output}: a pasta de saída já existe e não está vazia.",
                               hint="escolha outra pasta, ou use --force para a substituir por inteiro")
        if any(child.is_dir() and not child.is_symlink() for child in output.iterdir()):
            # The outputs are flat files: a folder with subfolders is not an earlier output, and --force
            # on the wrong path (a home folder, a repository) must not delete it.
            raise FarenseError(f"{output}: tem subpastas, não parece uma saída anterior; o --force não a substitui.")
    return output


def write_output_folder(output: Path, write: Callable[[Path], None]) -> None:
    """`write(folder)` fills a temporary sibling of `output`, which then takes its place: a crash or an
    error never leaves a half-written output, and an earlier output is only removed once the new one is whole."""
    output.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    earlier = fresh.with_name(fresh.name + ".anterior")
    try:
        write(fresh)
        os.chmod(fresh, 0o755)  # mkdtemp makes it private; the output should read like any other folder
        if output.exists():
            os.rename(output, earlier)
            try:
                os.rename(fresh, output)
            except OSError:
                os.rename(earlier, output)
                raise
        else:
            os.rename(fresh, output)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
        shutil.rmtree(earlier, ignore_errors=True)
