"""Every notebook in `nbs/` runs as one pytest case through nbdev's own test machinery (`nbdev.test.test_nb`).

Cells flagged with one of `tst_flags` from settings.ini (`slow`) are skipped unless `KA_TEST_FLAGS` names them,
exactly as `nbdev_test` does; `KA_TEST_FLAGS=slow pytest tests` is the same as `nbdev_test --flags slow`."""
import os
from pathlib import Path
import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook  # renamed: pytest would collect `test_nb`

ROOT = Path(__file__).resolve().parents[1]
NBS = sorted(p for p in (ROOT/'nbs').glob('*.ipynb') if not p.name.startswith('_'))

def _skip_flags():
    skip = set(get_config(cfg_name='settings.ini', path=ROOT).get('tst_flags', '').split())
    return sorted(skip - set(os.environ.get('KA_TEST_FLAGS', '').split()))

def test_there_are_notebooks(): assert len(NBS) >= 1, f'no notebooks found in {ROOT/"nbs"}'

@pytest.mark.parametrize('nb', NBS, ids=[p.stem for p in NBS])
def test_notebook(nb, capsys):
    ok, secs = run_notebook(nb, skip_flags=_skip_flags(), showerr=True, basepath=ROOT)
    assert ok, f'{nb.name} failed after {secs:.1f}s (traceback above)'
