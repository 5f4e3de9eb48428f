"""The failure modes found by trying to break the main job: nothing silently wrong, nothing lost, every error says what
is wrong. Each test is tiny; each failed on the code before the fixes (c67bc41)."""
import json
from pathlib import Path
import numpy as np, pytest, torch
from knowledge_adaptation.files import CheckpointError
from PIL import Image
from fastai.callback.core import Callback
from fastai.torch_core import set_seed
from knowledge_adaptation.data import seg_dls
from knowledge_adaptation.datasets import voc_dataset, cityscapes_dataset
from knowledge_adaptation.testing import make_voc_fixture, make_cityscapes_fixture, voc_mask_png
from knowledge_adaptation.models import MobileNetV2Seg
from knowledge_adaptation.distill import KALearner, load_student
from knowledge_adaptation.training import fit_resumable
from knowledge_adaptation.pipeline import reproduce
from knowledge_adaptation.autoencoder import load_encoder
from knowledge_adaptation.losses import adapt_loss, affinity_loss, kd_loss

quiet = lambda *a: None
TINY = dict(n_train=16, n_valid=4, bs=8, teacher_epochs=1, student_epochs=1, crop_size=48, scene_size=64)
VOC = dict(bs=2, teacher_epochs=1, student_epochs=1, crop_size=32)

def _voc(root:Path) -> Path: return make_voc_fixture(root)       # 6 training, 3 validation images of 48x64

# 1. fewer training images than the batch size
def test_fewer_training_images_than_the_batch_stops_before_training(tmp_path):
    with pytest.raises(ValueError, match='6 training images are fewer than the batch size 8'):
        reproduce('cpu', tmp_path/'a', log=quiet, **{**TINY, 'n_train': 6, 'n_valid': 8})
    assert not (tmp_path/'a'/'results.json').exists() and not (tmp_path/'a'/'teacher').exists()
    with pytest.raises(ValueError, match='6 training images are fewer than the batch size 8'):
        reproduce('cpu', tmp_path/'v', dataset='voc', root=_voc(tmp_path/'voc'), log=quiet, **{**VOC, 'bs': 8})

# 2. the same folder with other data
def test_same_out_with_another_root_stops(tmp_path):
    a, b = _voc(tmp_path/'a'), make_voc_fixture(tmp_path/'b', seed=1)
    reproduce('cpu', tmp_path/'out', dataset='voc', root=a, log=quiet, **VOC)
    with pytest.raises(ValueError, match='holds a run of another configuration .*data'):
        reproduce('cpu', tmp_path/'out', dataset='voc', root=b, log=quiet, **VOC)

# 3. a validation split without any labelled pixel
def test_validation_without_labelled_pixels_stops(tmp_path):
    root = _voc(tmp_path/'voc')
    for m in voc_dataset(root, 'val').masks: voc_mask_png(np.full_like(np.array(Image.open(m)), 255), m)
    with pytest.raises(ValueError, match='has no labelled pixel'):
        reproduce('cpu', tmp_path/'out', dataset='voc', root=root, log=quiet, **VOC)

# 4. the folder's identity is written only once the data has loaded
def test_failed_data_leaves_no_identity_behind(tmp_path):
    with pytest.raises(ValueError): reproduce('cpu', tmp_path/'out', log=quiet, **{**TINY, 'n_train': 6})
    assert not (tmp_path/'out'/'config.json').exists()
    reproduce('cpu', tmp_path/'out', log=quiet, **{**TINY, 'n_train': 16, 'teacher_epochs': 1})   # the corrected command runs

# 4b. every training file checked before training (#29): found at training index 4, not in epoch 1
def _fault(ds, fault:str):
    if fault == 'label': m = ds.masks[4]; lab = np.array(Image.open(m)); lab[0, 0] = 99; voc_mask_png(lab, m)
    if fault == 'cut': p = Path(ds.images[4]); p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2])
    if fault == 'void':
        for m in ds.masks: voc_mask_png(np.full_like(np.array(Image.open(m)), 255), m)

@pytest.mark.parametrize('fault, msg', [('label', r'invalid label value\(s\) \[99\]'), ('cut', 'cannot read image .*incomplete or truncated'),
                                        ('void', 'the training split .* has no labelled pixel: .* nothing would train')])
def test_training_file_faults_stop_before_training(tmp_path, fault, msg):
    root = _voc(tmp_path/'voc')
    _fault(voc_dataset(root, 'train'), fault)
    with pytest.raises(ValueError, match=msg): reproduce('cpu', tmp_path/'out', dataset='voc', root=root, log=quiet, **VOC)
    assert not (tmp_path/'out'/'teacher').exists()

def test_cityscapes_train_ids_under_the_label_id_name_stop(tmp_path):
    root = make_cityscapes_fixture(tmp_path/'cs')
    ds = cityscapes_dataset(root, 'train')
    for m in ds.masks: Image.fromarray(ds.read_mask(m)).save(m)          # train ids (void 255) where label ids belong
    with pytest.raises(ValueError, match=r'invalid label value\(s\) \[.*255\].*labelTrainIds'):
        reproduce('cpu', tmp_path/'out', dataset='cityscapes', root=root, log=quiet, **VOC)

# 4c. a folder's stages are never relabelled by a new config.json (#29)
def test_trained_stages_without_config_json_are_refused(tmp_path):
    root = _voc(tmp_path/'voc')
    reproduce('cpu', tmp_path/'out', dataset='voc', root=root, log=quiet, **VOC)
    (tmp_path/'out'/'config.json').unlink()
    with pytest.raises(ValueError, match='holds trained stages .* but no config.json: the configuration they were trained with is unknown'):
        reproduce('cpu', tmp_path/'out', dataset='voc', root=root, log=quiet, beta=5., **VOC)
    assert not (tmp_path/'out'/'config.json').exists()

# 5. data errors before training; an epoch checkpointed before its validation pass
def test_bad_validation_mask_stops_before_training(tmp_path):
    root = _voc(tmp_path/'voc')
    m = voc_dataset(root, 'val').masks[2]
    lab = np.array(Image.open(m)); lab[0, 0] = 99; voc_mask_png(lab, m)
    with pytest.raises(ValueError, match=f'{m}: invalid label value'):
        reproduce('cpu', tmp_path/'out', dataset='voc', root=root, log=quiet, **VOC)
    assert not (tmp_path/'out'/'teacher').exists()

def _dls(): return seg_dls('scenes', crop_size=32, bs=4, n_train=8, n_valid=4, device='cpu')

def _stage(folder, dls=None, cbs=None, n_epoch=2):
    dls = dls or _dls()
    set_seed(5)
    learn = KALearner(dls, MobileNetV2Seg(dls.n_classes), terms=(), lr=0.01, cbs=cbs)
    with learn.no_bar(), learn.no_logging(): st = fit_resumable(learn, n_epoch, folder, seed=5)
    return learn, st

class _FailValidation(Callback):
    "An error in the validation pass of epoch `epoch` (a broken validation image, say)."
    def __init__(self, epoch): self.at = epoch
    def before_validate(self):
        if self.epoch == self.at: raise RuntimeError('broken validation image')

def _same_weights(a, b): return all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))

def test_error_in_validation_loses_no_training(tmp_path):
    ref, st_ref = _stage(tmp_path/'straight')
    with pytest.raises(RuntimeError, match='broken validation image'): _stage(tmp_path/'cut', cbs=[_FailValidation(1)])
    st = json.loads((tmp_path/'cut'/'state.json').read_text())
    assert st['trained'] == 2 and st['epochs_done'] == 1          # epoch 1 trained and checkpointed, its row not yet complete
    before = (tmp_path/'cut'/'last.pth').stat().st_mtime_ns
    resumed, st2 = _stage(tmp_path/'cut')                          # validates epoch 1 only: no training repeated
    assert (tmp_path/'cut'/'last.pth').stat().st_mtime_ns == before
    assert _same_weights(ref, resumed) and st2['values'] == st_ref['values']

# 6. corrupt checkpoints and state files
def _truncate(p:Path): p.write_bytes(p.read_bytes()[:200])

def test_unreadable_last_checkpoint_restarts_the_stage_with_a_warning(tmp_path):
    ref, _ = _stage(tmp_path/'straight')
    class _Stop(Callback):
        def after_epoch(self):
            if self.epoch == 0: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): _stage(tmp_path/'cut', cbs=[_Stop()])
    _truncate(tmp_path/'cut'/'last.pth')
    with pytest.warns(UserWarning, match=r'last\.pth.*again from its start'): again, _ = _stage(tmp_path/'cut')
    assert _same_weights(ref, again)

def test_unreadable_final_weights_name_the_folder_to_delete(tmp_path):
    _stage(tmp_path/'s')
    _truncate(tmp_path/'s'/'final.pth')
    with pytest.raises(ValueError, match=rf"final\.pth.*delete the folder {tmp_path/'s'}"): _stage(tmp_path/'s')

@pytest.mark.parametrize('content', ['{"epochs_done": 1, "val', '{}', 'null'])
def test_unreadable_state_json_of_a_finished_stage_stops(tmp_path, content):
    "Truncated, empty or null: the stage had finished (final.pth), so nothing is retrained on a guess; the message says what to do."
    _stage(tmp_path/'s')
    (tmp_path/'s'/'state.json').write_text(content)
    with pytest.raises(CheckpointError, match=rf"state\.json .*has finished \(final\.pth\): restore state\.json, or delete the folder"): _stage(tmp_path/'s')

def test_unreadable_state_json_of_an_unfinished_stage_restarts_it(tmp_path):
    ref, _ = _stage(tmp_path/'straight')
    _stage(tmp_path/'s')
    (tmp_path/'s'/'final.pth').unlink()
    (tmp_path/'s'/'state.json').write_text('{}')
    with pytest.warns(UserWarning, match=r'holds no stage state'): again, st = _stage(tmp_path/'s')
    assert st['done'] and _same_weights(ref, again)

# 7. errors with a message, before any training
@pytest.mark.parametrize('kw, msg', [(dict(bs=1), 'bs=1'), (dict(teacher_epochs=0), 'teacher_epochs=0'),
                                     (dict(student_epochs=0), 'student_epochs=0'), (dict(seeds=0), 'seeds=0')])
def test_bad_numbers_stop_with_a_message(tmp_path, kw, msg):
    with pytest.raises(ValueError, match=msg): reproduce('cpu', tmp_path/'out', log=quiet, **{**TINY, **kw})
    assert not (tmp_path/'out'/'teacher').exists()

def test_loaders_refuse_files_of_another_kind(tmp_path):
    student = MobileNetV2Seg(3)
    torch.save(dict(arch='MobileNetV2Seg', config=dict(num_classes=3, output_stride=16, width_mult=1.), state_dict=student.state_dict()),
               tmp_path/'student.pth')
    with pytest.raises(ValueError, match='does not hold an encoder'): load_encoder(tmp_path/'student.pth')
    (tmp_path/'notes.txt').write_text('hello')
    with pytest.raises(ValueError, match='is not a student') as e: load_student(tmp_path/'notes.txt')
    torch.save(dict(obj=Path('x')), tmp_path/'pickle.pth')      # a pickle of arbitrary objects: never advise to unpickle it
    with pytest.raises(ValueError) as e: load_student(tmp_path/'pickle.pth')
    assert 'pickle.pth' in str(e.value) and 'weights_only=False' not in str(e.value)

def test_losses_refuse_bad_arguments():
    z, f = torch.randn(2, 4, 3, 3), torch.randn(2, 4, 3, 3)
    with pytest.raises(ValueError, match='p must be positive'): adapt_loss(z, f, p=0)
    with pytest.raises(ValueError, match='q must be positive'): adapt_loss(z, f, q=-2)
    with pytest.raises(ValueError, match='floating-point'): adapt_loss(z.long(), f)
    with pytest.raises(ValueError, match='empty'): affinity_loss(torch.randn(0, 4, 3, 3), torch.randn(0, 4, 3, 3))
    with pytest.raises(ValueError, match='floating-point'): kd_loss(torch.randint(0, 3, (2, 3, 4, 4)), torch.randn(2, 3, 4, 4))

# 8. a resumed run logs the epochs as an uninterrupted one did
def test_resumed_curves_equal_uninterrupted_ones(tmp_path):
    _, st_ref = _stage(tmp_path/'straight', n_epoch=3)
    class _Stop(Callback):
        def after_epoch(self):
            if self.epoch == 1: raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt): _stage(tmp_path/'cut', cbs=[_Stop()], n_epoch=3)
    _, st = _stage(tmp_path/'cut', n_epoch=3)
    assert st['names'] == st_ref['names'] and st['values'] == st_ref['values'], (st['values'], st_ref['values'])

# (#16) a user's own `Learner` settings do not move the checkpoints
def test_checkpoints_ignore_learn_path_and_model_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dls = _dls()
    learn = KALearner(dls, MobileNetV2Seg(dls.n_classes), terms=(), lr=0.01, path=tmp_path/'elsewhere', model_dir='weights')
    with learn.no_bar(), learn.no_logging(): fit_resumable(learn, 1, 'stage', seed=0)     # a relative stage folder
    assert {p.name for p in (tmp_path/'stage').iterdir()} >= {'last.pth', 'final.pth', 'state.json'}
    assert not (tmp_path/'elsewhere').exists() and not (tmp_path/'models').exists()

def test_a_stage_whose_loss_is_not_finite_is_never_marked_finished(tmp_path):
    "All training labels void: the cross-entropy has nothing to average (NaN). The stage stops, and is not done."
    from fastai.learner import Learner
    from knowledge_adaptation.training import seg_loss
    class _Void(Callback):
        def before_batch(self): self.learn.yb = (torch.full_like(self.yb[0], 255),)
    dls = _dls()
    learn = Learner(dls, MobileNetV2Seg(dls.n_classes), loss_func=seg_loss(), lr=0.01, cbs=_Void())   # as a teacher trains
    with pytest.raises(ValueError, match=r'ended with a training loss of nan: it is not marked finished\. Are all its training labels void'):
        with learn.no_bar(), learn.no_logging(): fit_resumable(learn, 1, tmp_path/'s', seed=0)
    assert not json.loads((tmp_path/'s'/'state.json').read_text())['done'] and not (tmp_path/'s'/'final.pth').exists()
