"""Run notebooks top to bottom and save their outputs, so that the docs show them (nbdev_test runs but does not save).

    python .ci/run_notebooks.py nbs/01_masking.ipynb ... [--slow]

Cells are skipped as nbdev_test skips them (`#| eval: false`, the `nbdev_export()` cell, and `#| slow` unless
--slow is given; slow cells need FER2013 at ../shared/data/fer2013 beside the repository). Run `nbdev_clean` afterwards.
"""
import os, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
from nbdev.process import extract_directives


def run(path: Path, slow: bool) -> None:
    "Execute `path` in a fresh shell, as nbdev_test would, and write it back with its outputs."
    nb = read_nb(path)
    skip = set() if slow else {'slow'}
    def no_eval(cell):
        if cell.cell_type != 'code': return True
        d = extract_directives(cell, remove=False)
        return 'nbdev_export(' in cell.source or d.get('eval:', [''])[0].lower() == 'false' or bool(skip & d.keys())
    sh = CaptureShell(path)
    with working_directory(path.parent): sh.run_all(nb, exc_stop=True, preproc=no_eval)
    write_nb(nb, path)


if __name__ == '__main__':
    os.environ['IN_TEST'] = '1'
    slow = '--slow' in sys.argv
    for p in [a for a in sys.argv[1:] if not a.startswith('--')]: run(Path(p).resolve(), slow); print('ran', p)
