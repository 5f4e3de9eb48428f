"""The console scripts as a user types them: from a fresh working directory, with relative paths (and `~`), the smallest
overrides that still train every stage, then the same command again, which must resume and train nothing."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch

TINY = ['--n_train', '16', '--n_valid', '4', '--bs', '8', '--teacher_epochs', '1', '--student_epochs', '1',
        '--crop_size', '48', '--scene_size', '64']

def _script(name:str) -> str:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert exe, f'console script {name} not found next to {sys.executable}: install the package (pip install -e .)'
    return exe

def _run(args, cwd, ok=True, **env):
    r = subprocess.run([_script(args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=900,
                       env=dict(os.environ, OMP_NUM_THREADS='2', MPLBACKEND='Agg', **env))
    if ok: assert r.returncode == 0, f'{" ".join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    return r

def _trained_nothing(stdout:str) -> bool:
    "A rerun that trained nothing: each stage says it was read back, and no live fastai progress table (the one with a time column) was printed."
    import re
    return 'finished before, read back' in stdout and not re.search(r'^epoch\s+train_loss\b.*\btime\s*$', stdout, re.M)

def _stamps(folder:Path) -> dict:
    "Modification times of every stage's checkpoints and JSON (the subfolders of `folder`): a rerun that trains nothing rewrites none."
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob('*')
            if p.suffix in ('.pth', '.json') and p.parent != folder}

def test_ka_reproduce_default_folder_files_and_resume(tmp_path):
    r = _run(['ka_reproduce', *TINY], tmp_path)                        # the README's command: default --out ka_output
    out = tmp_path/'ka_output'
    for f in ('results.md', 'results.json', 'curves.png', 'predictions.png', 'affinity.png', 'encoder.pth',
              'baseline_student.pth', 'ka_student.pth', 'config.json'):
        assert (out/f).is_file() and (out/f).stat().st_size > 0, f
    assert not (tmp_path/'models').exists()                            # nothing under fastai's learn.path/model_dir
    assert 'FutureWarning' not in r.stderr, r.stderr[-2000:]           # a quiet start: the project's own output first
    assert r.stdout.lstrip().startswith('dataset scenes'), r.stdout[:300]
    res = json.loads((out/'results.json').read_text())
    assert 0 <= res['ka']['miou'] <= 1 and 'KA - baseline' in (out/'results.md').read_text()
    from knowledge_adaptation.distill import load_student
    for kind in ('baseline', 'ka'):
        s = load_student(out/f'{kind}_student.pth')
        with torch.no_grad(): assert s(torch.randn(1, 3, 48, 48)).shape == (1, len(res['dataset']['class_names']), 48, 48)
    stamps, text = _stamps(out), (out/'results.json').read_text()
    r2 = _run(['ka_reproduce', *TINY], tmp_path)
    assert _trained_nothing(r2.stdout), r2.stdout[-2000:]              # every stage read back: its recorded table, no live one
    assert _stamps(out) == stamps
    assert json.loads((out/'results.json').read_text()) == json.loads(text)

def test_ka_reproduce_digits_and_the_tutorial_preset(tmp_path):
    "The second embedded dataset through the same command: real digits on photographs, its own classes, nothing to download."
    r = _run(['ka_reproduce', '--dataset', 'digits', '--out', 'digits_run', *TINY], tmp_path)
    assert r.stdout.lstrip().startswith('dataset digits'), r.stdout[:300]
    res = json.loads((tmp_path/'digits_run'/'results.json').read_text())
    assert res['dataset']['class_names'] == ['background', '0', '1', '2', '3', '4'] and res['config']['dataset'] == 'digits'
    assert set(res['ka']['per_class']) == set(res['dataset']['class_names'])
    from knowledge_adaptation.distill import load_student
    s = load_student(tmp_path/'digits_run'/'ka_student.pth')
    with torch.no_grad(): assert s(torch.randn(1, 3, 48, 48)).shape == (1, 6, 48, 48)
    # the tutorial preset: ten shapes, through both commands
    tut = ['ka_reproduce', '--preset', 'tutorial', '--out', 'tutorial_run', *TINY]
    _run(tut, tmp_path)
    res = json.loads((tmp_path/'tutorial_run'/'results.json').read_text())
    from knowledge_adaptation.shapes import SHAPE_CLASSES
    assert res['dataset']['class_names'] == list(SHAPE_CLASSES) and res['config']['name'] == 'tutorial'
    r2 = _run(tut, tmp_path)                                            # finished: read back, nothing trained
    assert _trained_nothing(r2.stdout), r2.stdout[-2000:]
    _run(['ka_ablate', '--preset', 'tutorial', '--out', 'tutorial_ablation', '--rows', 'baseline,ka', '--seeds', '1', *TINY], tmp_path)
    abl = json.loads((tmp_path/'tutorial_ablation'/'results.json').read_text())
    assert abl['preset'] == 'ablation-tutorial' and set(abl['rows']) == {'baseline', 'ka'}

def test_ka_ablate_home_folder_files_and_resume(tmp_path):
    args = ['ka_ablate', '--out', '~/ablation', '--rows', 'baseline,ka', '--seeds', '1', *TINY]
    _run(args, tmp_path, HOME=str(tmp_path/'home'))
    out = tmp_path/'home'/'ablation'                                    # `~` expanded, not a folder named '~'
    assert not (tmp_path/'~').exists()
    for f in ('results.md', 'results.json', 'miou_vs_gmacs.png', 'runs/baseline_seed0.json', 'runs/ka_seed0.json', 'runs/teacher.json'):
        assert (out/f).is_file(), f
    stamps, text = _stamps(out), (out/'results.json').read_text()
    r2 = _run(args, tmp_path, HOME=str(tmp_path/'home'))
    assert '0 to train' in r2.stdout and 'train_loss' not in r2.stdout, r2.stdout[-2000:]
    assert _stamps(out) == stamps
    assert json.loads((out/'results.json').read_text()) == json.loads(text)

def test_ka_flops_relative_out(tmp_path):
    r = _run(['ka_flops', '--size', '64', '--teachers', 'resnet18', '--strides', '16,4', '--out', 'reports/flops.md'], tmp_path)
    text = (tmp_path/'reports'/'flops.md').read_text()
    assert 'student OS16' in text and 'student OS4' in text and text.strip() in r.stdout

@pytest.mark.parametrize('script', ['ka_reproduce', 'ka_ablate'])
def test_out_that_is_a_file_stops_before_training(tmp_path, script):
    (tmp_path/'taken').write_text('a file')
    r = _run([script, '--out', 'taken', *TINY], tmp_path, ok=False)
    assert r.returncode != 0 and f'{tmp_path.resolve()/"taken"} is an existing file' in r.stderr, r.stderr[-2000:]
    assert 'teacher' not in r.stdout                                    # stopped before the first stage

def test_ka_reproduce_on_your_own_folder_and_with_your_teacher(tmp_path):
    "The own-data path of the README: a folder of images, colour masks and classes.json; then a second run reusing its teacher."
    from knowledge_adaptation.testing import make_folder_fixture
    make_folder_fixture(tmp_path/'mine', n_train=4, n_val=2, colour=True)
    own = ['--dataset', 'folder', '--root', 'mine', '--bs', '2', '--teacher_epochs', '1', '--student_epochs', '1', '--crop_size', '32']
    r = _run(['ka_reproduce', *own, '--out', 'runs/mine'], tmp_path)
    assert r.stdout.lstrip().startswith('dataset folder: 4 training / 2 validation images, 3 classes'), r.stdout[:300]
    res = json.loads((tmp_path/'runs'/'mine'/'results.json').read_text())
    assert res['dataset']['class_names'] == ['background', 'cat', 'dog'] and res['dataset']['name'] == 'folder'
    r2 = _run(['ka_reproduce', *own, '--out', 'runs/again', '--teacher', 'runs/mine/teacher'], tmp_path)
    assert 'stage 0 skipped' in r2.stdout and not (tmp_path/'runs'/'again'/'teacher').exists()
    res2 = json.loads((tmp_path/'runs'/'again'/'results.json').read_text())
    assert res2['teacher']['miou'] == pytest.approx(res['teacher']['miou'])
    _run(['ka_ablate', *own, '--out', 'runs/abl', '--rows', 'baseline,ka', '--seeds', '1', '--teacher', 'runs/mine/teacher/final.pth'], tmp_path)
    abl = json.loads((tmp_path/'runs'/'abl'/'results.json').read_text())
    assert set(abl['rows']) == {'baseline', 'ka'} and not (tmp_path/'runs'/'abl'/'teacher').exists()
    bad = _run(['ka_reproduce', '--dataset', 'folder', '--root', 'nowhere', '--out', 'x'], tmp_path, ok=False)
    assert bad.returncode != 0 and 'Expected layout' in bad.stderr and not (tmp_path/'x'/'teacher').exists()

ERRORS = {   # a command with bad input -> what its one error line says
    ('ka_reproduce', '--preset', 'gpu'): "ka_reproduce: error: unknown preset 'gpu'",
    ('ka_reproduce', '--dataset', 'folder', '--root', 'nowhere'): 'ka_reproduce: error: folder not found',
    ('ka_ablate', '--rows', 'kd'): "ka_ablate: error: unknown rows ['kd']",
    ('ka_predict', 'nothing.pth', '.'): 'ka_predict: error: ',
    ('ka_flops', '--strides', '3'): 'ka_flops: error: student output_stride must be one of',
}

@pytest.mark.parametrize('args', list(ERRORS), ids=[' '.join(a) for a in ERRORS])
def test_input_errors_are_one_line_with_status_2(args, tmp_path):
    "A fault of the input: its message alone on stderr, as argparse prints its own, and argparse's status 2."
    r = _run(list(args), tmp_path, ok=False)
    assert r.returncode == 2 and r.stderr.startswith(ERRORS[args]) and 'Traceback' not in r.stderr, (r.returncode, r.stderr[-2000:])

def test_debug_shows_the_traceback(tmp_path):
    for extra, env in ((['--debug'], {}), ([], {'KA_DEBUG': '1'})):
        d = _run(['ka_reproduce', '--preset', 'gpu', *extra], tmp_path, ok=False, **env)
        assert d.returncode == 1 and 'Traceback (most recent call last)' in d.stderr, d.stderr[-2000:]

def test_two_runs_on_one_folder(tmp_path):
    "The second run on a folder in use stops at once, naming the folder and the first run's process; the first is not disturbed."
    import time
    args = [_script('ka_reproduce'), *TINY, '--teacher_epochs', '30', '--out', 'race']
    first = subprocess.Popen(args, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, OMP_NUM_THREADS='1'))
    try:
        for _ in range(600):                                           # until the first holds the folder
            if (tmp_path/'race'/'config.json').exists(): break
            time.sleep(0.2)
        r = _run(['ka_reproduce', *TINY, '--teacher_epochs', '30', '--out', 'race'], tmp_path, ok=False)
        assert r.returncode == 2 and f'race is in use by another run (process {first.pid})' in r.stderr, r.stderr[-2000:]
        assert first.poll() is None                                    # still training
    finally: first.kill(); first.wait()

def test_torchvision_teacher_and_student_on_the_command_line(tmp_path):
    "--teacher_arch and --student take torchvision's segmentation builders: every stage, the export, the ablation's rows that apply."
    tv = [*TINY, '--teacher_arch', 'deeplabv3_mobilenet_v3_large', '--student', 'lraspp_mobilenet_v3_large']
    r = _run(['ka_reproduce', *tv, '--out', 'tv'], tmp_path)
    res = json.loads((tmp_path/'tv'/'results.json').read_text())
    assert (res['config']['student_arch'], res['config']['teacher_arch']) == ('lraspp_mobilenet_v3_large', 'deeplabv3_mobilenet_v3_large')
    assert 'baseline student (torchvision lraspp_mobilenet_v3_large)' in (tmp_path/'tv'/'results.md').read_text()
    from knowledge_adaptation.distill import load_student
    s = load_student(tmp_path/'tv'/'ka_student.pth')
    assert type(s.source[0]).__name__ == 'LRASPP' and s.feature == 'backbone.16'
    bad = _run(['ka_ablate', *tv, '--out', 'tv_abl', '--seeds', '1'], tmp_path, ok=False)
    assert bad.returncode == 2 and 'rows os8_baseline, os8_ka, os4_baseline, os4_ka vary the output stride' in bad.stderr, bad.stderr[-1000:]
    _run(['ka_ablate', *tv, '--out', 'tv_abl', '--seeds', '1', '--rows', 'baseline,ka'], tmp_path)
    abl = json.loads((tmp_path/'tv_abl'/'results.json').read_text())
    assert set(abl['rows']) == {'baseline', 'ka'}
