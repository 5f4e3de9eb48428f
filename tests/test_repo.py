"Repository checks that are not notebook tests: the README agrees with nbs/index.ipynb, the exported package is current."
import pytest
import importlib.util, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def _load_readme_tool():
    spec = importlib.util.spec_from_file_location('readme_tool', ROOT/'.ci'/'readme.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod

def test_readme_matches_index_notebook():
    text = _load_readme_tool().render()
    assert (ROOT/'README.md').read_text() == text, 'README.md is out of date: run `python .ci/readme.py`'

def test_readme_has_the_two_commands():
    readme = (ROOT/'README.md').read_text()
    blocks = [b.strip() for b in readme.split('```sh')[1:]]
    cmds = [b.split('```')[0].strip() for b in blocks]
    assert len(cmds) == 2, cmds
    assert 'pip install' in cmds[0] and 'pytest' in cmds[1]

def test_package_is_exported_from_notebooks(tmp_path):
    "`nbdev_export` into a scratch copy must reproduce the committed package byte for byte."
    import shutil
    for p in ('nbs', 'knowledge_adaptation', 'settings.ini'):
        src = ROOT/p
        (shutil.copytree if src.is_dir() else shutil.copy)(src, tmp_path/p)
    subprocess.run([sys.executable, '-c', 'from nbdev.doclinks import nbdev_export; nbdev_export()'],
                   cwd=tmp_path, check=True, capture_output=True)
    for f in sorted((ROOT/'knowledge_adaptation').glob('*.py')):
        assert (tmp_path/'knowledge_adaptation'/f.name).read_text() == f.read_text(), f'{f.name} differs from its notebook: run nbdev_export'
    new = {f.name for f in (tmp_path/'knowledge_adaptation').glob('*.py')} - {f.name for f in (ROOT/'knowledge_adaptation').glob('*.py')}
    assert not new, f'notebooks export modules that are not committed: {new}'

def test_readme_links_and_images_exist_and_images_are_small():
    "Every relative link and image of the README points at a file of the repository; each image is under 300 KB."
    import re
    readme = (ROOT/'README.md').read_text()
    targets = re.findall(r'\]\((?!https?://|#)([^)\s]+)\)', readme)
    assert any(t.endswith('.png') for t in targets), 'the README shows no image'
    for t in targets:
        assert (ROOT/t).exists(), f'README links to {t}, which does not exist'
        if t.endswith('.png'): assert (ROOT/t).stat().st_size < 300_000, f'{t} is {(ROOT/t).stat().st_size} bytes'

@pytest.mark.parametrize('run', ['tutorial', 'quickstart'])
def test_readme_states_the_committed_results(run):
    "The README's tables of the tutorial run and of the quick start are the committed runs', as `results_markdown` writes them from nbs/results: no number retyped."
    import json
    from knowledge_adaptation.report import results_markdown
    res = json.loads((ROOT/'nbs'/'results'/run/'results.json').read_text())
    table = results_markdown(res).strip()
    assert table in (ROOT/'README.md').read_text(), f'README.md does not state nbs/results/{run}/results.json: execute nbs/index.ipynb, run .ci/readme.py'
    want = dict(tutorial=('tutorial', 3, 'shapes'), quickstart=('cpu', 1, 'scenes'))[run]   # what each run is: the preset, seeds, data
    assert (res['config']['name'], res['seeds'], res['dataset']['name']) == want

def test_readme_states_the_committed_ablation():
    "The README's comparisons with the paper are the committed tutorial ablation's, as `comparison_lines` writes them."
    import json
    from knowledge_adaptation.ablations import comparison_lines
    res = json.loads((ROOT/'nbs'/'results'/'tutorial_ablation'/'results.json').read_text())
    assert (res['preset'], res['seeds']) == ('ablation-tutorial', 3) and len(res['rows']) == 12
    readme = (ROOT/'README.md').read_text()
    for line in comparison_lines(res): assert f'- {line}' in readme, f'README.md does not state {line!r}: execute nbs/index.ipynb, run .ci/readme.py'

def test_readme_states_kd_at_the_tutorial_budget():
    "KD (T = 4) at the tutorial run's budget pairs by seed with the run's KA students only if its baselines are the run's, bit for bit; the README states the difference."
    import json
    from knowledge_adaptation.report import paired_diff, fmt_diff
    tut, kd = (json.loads((ROOT/'nbs'/'results'/n/'results.json').read_text()) for n in ('tutorial', 'tutorial_kd96'))
    assert [r['miou'] for r in kd['rows']['baseline']['runs']] == [r['miou'] for r in tut['baseline']['runs']]
    d = paired_diff({'ka': tut['ka'], 'kd_t4': kd['rows']['kd_t4']}, 'ka', 'kd_t4')
    assert d['n'] == 3 and d['se'] is not None and f"method - KD (T = 4) = {fmt_diff(d)}." in (ROOT/'README.md').read_text()

def test_readme_is_a_front_page():
    "The README is a front page: at most 1,300 words of prose outside its fenced code blocks; the rest lives in the notebooks."
    import re
    text = (ROOT/'README.md').read_text()
    prose = re.sub(r'^\s*```.*?^\s*```[^\n]*$', '', text, flags=re.S | re.M)
    n = len(re.findall(r"[A-Za-z][A-Za-z'’-]*", prose))
    assert n <= 1300, f'README.md has {n} words outside code blocks (at most 1,300): move detail into the notebooks'
