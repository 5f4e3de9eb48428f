"""Knowledge adaptation for networks the project did not write: torchvision's segmentation models and plain modules as
teacher and student, through every stage (translator, one KA epoch with both terms, export, load, predict, ONNX,
`ka_predict`), and the faults a user meets first, each with a message that says what to do."""
import os, shutil, subprocess, sys
from pathlib import Path
import pytest, torch
from torch import nn
from torchvision.models.segmentation import deeplabv3_resnet50, fcn_resnet50, lraspp_mobilenet_v3_large
from knowledge_adaptation.data import seg_dls
from knowledge_adaptation.shapes import ShapeConfig
from knowledge_adaptation.features import with_feature
from knowledge_adaptation.autoencoder import fit_translator
from knowledge_adaptation.distill import KALearner, load_student
from knowledge_adaptation.training import state_fingerprint, same_state
from knowledge_adaptation.predict import predict, export_onnx, read_student

class TinySeg(nn.Module):
    "Four convolutions, logits at stride 8."
    def __init__(self, n:int):
        super().__init__()
        c = lambda i, o, s: nn.Sequential(nn.Conv2d(i, o, 3, s, 1, bias=False), nn.BatchNorm2d(o), nn.ReLU())
        self.body = nn.Sequential(c(3, 8, 2), c(8, 16, 2), c(16, 16, 2), c(16, 16, 1))
        self.head = nn.Conv2d(16, n, 1)
    def forward(self, x): return self.head(self.body(x))

class Branchy(TinySeg):
    "A student fx cannot trace (Python control flow on a tensor's value), returning a dict as torchvision's do."
    def forward(self, x):
        if x.mean() > 10: x = x * 0.5
        return {'out': self.head(self.body(x))}

def _tv(builder): return lambda n: builder(weights=None, weights_backbone=None, num_classes=n)
TEACHERS = {'deeplabv3': (_tv(deeplabv3_resnet50), 'classifier.3'), 'fcn': (_tv(fcn_resnet50), 'classifier.2')}
STUDENTS = {'lraspp': (_tv(lraspp_mobilenet_v3_large), 'backbone.16'), 'custom': (TinySeg, 'body.3'),
            'untraceable': (Branchy, 'body.3')}
PAIRS = [('deeplabv3', 'lraspp'), ('fcn', 'lraspp'), ('fcn', 'custom'), ('fcn', 'untraceable')]

@pytest.fixture(scope='module')
def dls():
    torch.manual_seed(0)
    return seg_dls('shapes', crop_size=48, bs=4, n_train=8, n_valid=4, scene_config=ShapeConfig(size=48), device='cpu')

@pytest.mark.parametrize('t,s', PAIRS, ids=[f'{t}->{s}' for t, s in PAIRS])
def test_every_stage(t, s, dls, tmp_path):
    n, (tb, tf), (sb, sf) = dls.n_classes, TEACHERS[t], STUDENTS[s]
    torch.manual_seed(0)
    teacher, student = with_feature(tb(n), tf), with_feature(sb(n), sf)
    assert student.traced == (s != 'untraceable')
    frozen = state_fingerprint(teacher)
    translator = fit_translator(dls, teacher, student, epochs=1, latent_ch=32)
    code = state_fingerprint(translator)
    learn = KALearner(dls, student, teacher, translator, terms=('adapt', 'aff'))
    with learn.no_bar(), learn.no_logging(): learn.fit(1)
    names, row = learn.recorder.metric_names[1:-1], learn.recorder.values[-1]
    assert {'adapt', 'aff'} <= set(names) and all(v == v for v in row), (names, row)       # both terms ran, finite
    assert same_state(frozen, state_fingerprint(teacher))               # the teacher never changed,
    assert same_state(code, state_fingerprint(translator))              # nor the translator
    # export and load: a torchvision builder is found by itself; another class is given as an instance
    f = learn.export_student(tmp_path/'student.pth')
    if s == 'lraspp': loaded = load_student(f)
    else:
        with pytest.raises(ValueError, match=rf'pass model={type(student.source[0]).__name__}\(\.\.\.\)'): load_student(f)
        loaded = load_student(f, model=sb(n))
    x = dls.one_batch()[0][:2].cpu()
    with torch.no_grad(): ref = learn.student.eval()(x)
    torch.testing.assert_close(loaded(x), ref)
    imgs = [(torch.rand(3, 40, 56) * 255).to(torch.uint8) for _ in range(2)]
    masks = predict(loaded, imgs)
    assert [tuple(m.shape) for m in masks] == [(40, 56)] * 2
    # ONNX: the same logits, and `ka_predict` on the file (and on the .pth where a builder rebuilds it)
    onnx = export_onnx(loaded, tmp_path/'student.onnx')
    torch.testing.assert_close(read_student(onnx)(x), ref, rtol=1e-3, atol=1e-4)
    img_dir = tmp_path/'imgs'; img_dir.mkdir()
    from PIL import Image
    for i, im in enumerate(imgs): Image.fromarray(im.permute(1, 2, 0).numpy()).save(img_dir/f'im{i}.png')
    for file in [onnx] + ([f] if s == 'lraspp' else []):
        exe = shutil.which('ka_predict', path=str(Path(sys.executable).parent))
        r = subprocess.run([exe, str(file), str(img_dir), '--out', str(tmp_path/file.suffix[1:])], capture_output=True, text=True,
                           timeout=600, env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert r.returncode == 0, r.stderr[-3000:]
        assert sorted(p.name for p in (tmp_path/file.suffix[1:]).iterdir()) == ['im0_mask.png', 'im0_overlay.png', 'im1_mask.png', 'im1_overlay.png']

def test_faults_say_what_to_do(dls):
    n = dls.n_classes
    raw = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=n)
    teacher = with_feature(TinySeg(n), 'body.1')                      # a teacher feature at stride 4
    with pytest.raises(TypeError, match=r"the student \(LRASPP\) has no forward_with_feature.*with_feature"):
        KALearner(dls, raw, teacher, terms=())
    with pytest.raises(ValueError, match=r"node 'backbone\.99' is not in the network; closest: backbone\."):
        with_feature(raw, 'backbone.99')
    with pytest.raises(ValueError, match=r"predicts 3 classes but the dataset has"):
        KALearner(dls, with_feature(TinySeg(3), 'body.3'), teacher, terms=())
    with pytest.raises(ValueError, match=r"without an 'out' tensor \(keys: \['logits'\]\)"):
        class Keyed(TinySeg):
            def forward(self, x): return {'logits': super().forward(x)}
        with_feature(Keyed(n), 'body.3')
    # a translator fitted for a stride-16 student, given a stride-8 one: its code is coarser than the student's grid
    s16 = with_feature(lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=n), 'backbone.16')
    tr16 = fit_translator(dls, teacher, s16, epochs=1, latent_ch=8)
    with pytest.raises(ValueError, match=r"code is at stride 16, coarser than the student's feature \(stride 8\).*fit_translator"):
        KALearner(dls, with_feature(TinySeg(n), 'body.3'), teacher, tr16)

def test_a_unet_from_another_library(tmp_path):
    "FCN -> segmentation_models_pytorch's U-Net (a dev dependency): the library's networks need no change either."
    smp = pytest.importorskip('segmentation_models_pytorch')
    torch.manual_seed(0)
    dls = seg_dls('shapes', crop_size=64, bs=4, n_train=8, n_valid=4, scene_config=ShapeConfig(size=64), device='cpu')  # U-Net: sides divisible by 32
    n = dls.n_classes
    unet = lambda: smp.Unet('resnet18', encoder_weights=None, classes=n)
    teacher, student = with_feature(fcn_resnet50(weights=None, weights_backbone=None, num_classes=n), 'classifier.2'), with_feature(unet(), 'decoder.blocks.0')
    assert (student.feature_stride, teacher.feature_stride) == (16, 8)
    frozen = state_fingerprint(teacher)
    learn = KALearner(dls, student, teacher, fit_translator(dls, teacher, student, epochs=1, latent_ch=32), terms=('adapt', 'aff'))
    with learn.no_bar(), learn.no_logging(): learn.fit(1)
    assert all(v == v for v in learn.recorder.values[-1]) and same_state(frozen, state_fingerprint(teacher))
    f = learn.export_student(tmp_path/'unet.pth')
    with pytest.raises(ValueError, match=r'pass model=Unet\(\.\.\.\)'): load_student(f)
    loaded, x = load_student(f, model=unet()), dls.one_batch()[0][:2].cpu()
    with torch.no_grad(): ref = learn.student.eval()(x)
    torch.testing.assert_close(loaded(x), ref)
    assert [tuple(m.shape) for m in predict(loaded, [(torch.rand(3, 64, 96) * 255).to(torch.uint8)])] == [(64, 96)]
    odd = (torch.rand(3, 50, 70) * 255).to(torch.uint8)
    assert [tuple(m.shape) for m in predict(loaded, [odd])] == [(50, 70)]      # smp's U-Net takes any size; its FPN does not:
    fpn = smp.FPN('resnet18', encoder_weights=None, classes=n)                # refused with the way out, then padded and cut back
    with pytest.raises(ValueError, match=r'images of 50x70 \(pad_to=1\).*divisible by 32.*pad_to'): predict(fpn, [odd])
    assert [tuple(m.shape) for m in predict(fpn, [odd], pad_to=32)] == [(50, 70)]
    torch.testing.assert_close(read_student(export_onnx(loaded, tmp_path/'unet.onnx'))(x), ref, rtol=1e-3, atol=1e-4)
