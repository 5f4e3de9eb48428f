"""The notebooks are read on GitHub without being run: each one of the reading order (the docs sidebar) is saved with its
outputs, the figures and tables the tutorial promises are there, and no notebook carries more than 1 MB of them.

`.ci/execute.py` runs a notebook with its slow cells and saves it; a cell is found by a piece of its source."""
import json, re
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT/'nbs'
READING_ORDER = re.findall(r'-\s+(\S+\.ipynb)', (NBS/'sidebar.yml').read_text())

# notebook -> {piece of a cell's source: the output it must hold}: 'image' (a figure), 'table' (markdown or a printed table)
PROMISED = {
    '00_losses': {'A = affinity_matrix(feat)[0] * h*w': 'image'},
    '00d_gram': {"'../bench/affinity.py'": 'table'},
    '01_autoencoder': {"rows.append([f'OS{s}', t.strides": 'table', "print(f'{len(run.dls.valid.dataset)} validation images: teacher feature": 'text',
                       "axs[r, 2].imshow(rec[i, c]": 'image'},
    '02_adapter': {"rows.append([f'OS{s}', tuple(p_s.shape[1:])": 'table', "('ce', 'adapt', 'aff')": 'image'},
    '03_affinity': {"'KA student φ_s': run.ka.forward_with_feature(x)[1]": 'image'},
    '04_distill': {"# the paper's Fig. 2": 'image', 'res = reproduce(**TUTORIAL)': 'progress', 'mechanism_markdown(mechanism(': 'table',
                   'Markdown(results_markdown(res))': 'table', "plot_curves(res['history'])": 'image',
                   'plot_predictions(run.dls': 'image'},
    '05_ablations': {'res = tutorial_ablation()': 'table', 'plot_miou_vs_gmacs(res);': 'image'},
    '06_models': {"parts_table(teacher, t_parts)": 'table', "parts_table(student, s_parts)": 'table'},
    '07_complexity': {'print(complexity_report(rows512, 512))': 'text'},
    '08_data': {'fig = dls.show_batch(max_n=4)': 'image', "dls = seg_dls('digits'": 'image', 'for d in (dv, dc, dx):': 'image'},
    '08f_digits': {"tr, va = DigitDataset(8, 'train'), DigitDataset(4, 'valid')": 'image'},
    '09_metrics': {"ax.set_xlabel('predicted')": 'image'},
}

def _nb(name): return json.loads((NBS/name).read_text())
def _src(c): return ''.join(c['source'])
def _code(nb): return [c for c in nb['cells'] if c['cell_type'] == 'code']

def _text(c) -> str:
    "Everything a cell's outputs say in text: streams, plain text and markdown."
    parts = []
    for o in c.get('outputs', []):
        if 'text' in o: parts.append(''.join(o['text']))
        for k in ('text/plain', 'text/markdown'):
            if k in o.get('data', {}): parts.append(''.join(o['data'][k]))
    return '\n'.join(parts)

def _holds(c, kind:str) -> bool:
    data = [o.get('data', {}) for o in c.get('outputs', [])]
    if kind == 'image': return any('image/png' in d for d in data)
    if kind == 'table': return any('text/markdown' in d for d in data) or '|---' in _text(c)
    if kind == 'progress':   # fastai's progress table of the KA student: the terms in columns of their own
        return any(re.search(r'\bepoch\s+train_loss\s+ce\s+adapt\s+aff\b', l) for l in _text(c).splitlines())
    return bool(_text(c).strip())

def test_reading_order_is_known():
    assert len(READING_ORDER) >= 20, READING_ORDER
    missing = [n for n in READING_ORDER if not (NBS/n).exists()]
    assert not missing, f'nbs/sidebar.yml names notebooks that do not exist: {missing}'

@pytest.mark.parametrize('name', READING_ORDER)
def test_saved_with_outputs(name):
    nb = _nb(name)
    if not _code(nb): return   # prose only (method, findings): nothing to run
    shown = [c for c in _code(nb) if c.get('outputs')]
    assert shown, f'{name} has no saved output: run `python .ci/execute.py nbs/{name}` and `nbdev_clean`'
    size = (NBS/name).stat().st_size
    assert size < 1_000_000, f'{name} is {size / 1e6:.2f} MB with its outputs: draw its figures smaller (figsize, fewer panels)'

@pytest.mark.parametrize('stem', sorted(PROMISED))
def test_promised_outputs(stem):
    nb = _nb(f'{stem}.ipynb')
    for piece, kind in PROMISED[stem].items():
        cells = [c for c in _code(nb) if piece in _src(c)]
        assert len(cells) == 1, f'{stem}: {len(cells)} code cells contain {piece!r}, expected one'
        assert _holds(cells[0], kind), f'{stem}: the cell with {piece!r} has no saved {kind} output'

MACHINE = re.compile('|'.join(re.escape(str(p)) for p in {ROOT, Path.home(), Path('/tmp')}) + r'|\w+Warning: ')

@pytest.mark.parametrize('name', READING_ORDER)
def test_saved_outputs_hold_no_machine_paths_or_warnings(name):
    "A reader sees neither the author's folders (checkout, home, temporary) nor warnings in a saved output."
    found = [(c.get('id'), m.group()) for c in _code(_nb(name)) if (m := MACHINE.search(_text(c)))]
    assert not found, f'{name}: saved outputs show {found[:3]}: re-execute it (`python .ci/execute.py nbs/{name}`) after fixing the cell'

def test_promised_checks_can_fail():
    "The checks above tell a cell without outputs, or with text only, from one with the promised output."
    bare = dict(cell_type='code', source=['x'], outputs=[])
    text = dict(bare, outputs=[dict(output_type='stream', name='stdout', text=['epoch     train_loss  ce        valid_loss\n'])])
    assert not any(_holds(bare, k) for k in ('image', 'table', 'progress', 'text'))
    assert not _holds(text, 'image') and not _holds(text, 'progress') and _holds(text, 'text')
    warned = dict(bare, outputs=[dict(output_type='stream', name='stderr', text=[f'{ROOT}/x.py:3: UserWarning: careful'])])
    assert MACHINE.search(_text(warned)) and not MACHINE.search(_text(text))
