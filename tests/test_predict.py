"""`ka_predict` as a user types it: from a fresh working directory, with relative paths, on a student file laid out as
`KALearner.export_student` writes it and a folder of images of two sizes; then a folder without an image, which stops
it before any inference. (The other input errors are tested in nbs/04d_predict.ipynb, in process.)"""
import os, shutil, subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch
from torch import nn
from PIL import Image
from torchvision import tv_tensors
from knowledge_adaptation.models import MobileNetV2Seg
from knowledge_adaptation.transforms import valid_tfms
from knowledge_adaptation.files import torch_save
from knowledge_adaptation.distill import student_config, load_student
from knowledge_adaptation.predict import predict

SIZES = {'a.png': (48, 64), 'b.jpg': (40, 56), 'c.jpeg': (48, 64)}   # name: (H, W)

def _script(name:str) -> str:
    exe = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert exe, f'console script {name} not found next to {sys.executable}: install the package (pip install -e .)'
    return exe

def _run(args, cwd, ok=True):
    r = subprocess.run([_script(args[0]), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, OMP_NUM_THREADS='2', MPLBACKEND='Agg'))
    if ok: assert r.returncode == 0, f'{" ".join(args)} failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    return r

def _student(n_classes:int=3, seed:int=0) -> MobileNetV2Seg:
    "An untrained student with BatchNorm statistics and standardised logits from random images, so its masks vary."
    torch.manual_seed(seed)
    s = MobileNetV2Seg(n_classes, 16)
    for m in s.modules():
        if isinstance(m, nn.BatchNorm2d): m.momentum = None
    x = valid_tfms()(tv_tensors.Image(torch.randint(0, 256, (8, 3, 64, 64), dtype=torch.uint8)))
    with torch.no_grad():
        s.train()(x); y = s.eval()(x)
        mu, sd = y.mean((0, 2, 3)), y.std((0, 2, 3)) / 3
        c = s.classifier; c.weight /= sd[:, None, None, None]; c.bias.copy_((c.bias - mu) / sd)
    return s

@pytest.fixture(scope='module')
def job(tmp_path_factory):
    "A student file and a folder of three images (two sizes, PNG and JPEG) plus a file that is not an image."
    d = tmp_path_factory.mktemp('job')
    s = _student()
    torch_save(dict(arch='MobileNetV2Seg', config=student_config(s), state_dict=s.state_dict()), d/'student.pth')
    (d/'photos').mkdir()
    rng = np.random.default_rng(0)
    for name, (h, w) in SIZES.items(): Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d/'photos'/name)
    (d/'photos'/'notes.txt').write_text('not an image')
    return d

def test_ka_predict_folder_writes_masks_and_overlays(job):
    r = _run(['ka_predict', 'student.pth', 'photos', '--bs', '2'], job)     # relative paths, default --out
    out = job/'ka_predictions'
    assert sorted(p.name for p in out.iterdir()) == sorted(f'{Path(n).stem}_{k}.png' for n in SIZES for k in ('mask', 'overlay'))
    lines = r.stdout.strip().splitlines()
    assert len(lines) == len(SIZES) + 1 and lines[-1].startswith(f'{len(SIZES)} images in'), r.stdout
    assert str(out) in lines[-1]
    files = sorted((job/'photos').glob('*.[jp]*g'))
    ref = predict(load_student(job/'student.pth'), files, device='cpu')
    for f, m in zip(files, ref):
        h, w = SIZES[f.name]
        with Image.open(out/f'{f.stem}_mask.png') as im:
            assert im.mode == 'P' and im.size == (w, h)
            np.testing.assert_array_equal(np.array(im), m.numpy())
        with Image.open(out/f'{f.stem}_overlay.png') as im: assert im.mode == 'RGB' and im.size == (w, h)
    assert any(len(np.unique(m)) > 1 for m in ref)                       # the masks are not one class everywhere

def test_ka_predict_folder_without_images_stops_before_inference(job):
    (job/'empty').mkdir()
    (job/'empty'/'notes.txt').write_text('not an image')
    r = _run(['ka_predict', 'student.pth', 'empty', '--out', 'never'], job, ok=False)
    assert r.returncode != 0 and f'the folder {job.resolve()/"empty"} holds no image' in r.stderr, r.stderr[-2000:]
    assert not (job/'never').exists()                                  # stopped before the output folder was made
