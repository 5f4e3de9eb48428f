"""fastai DDP on the CPU: `torchrun --nproc_per_node 2` trains through `fit_resumable` and the mIoU of `evaluate` covers
the whole validation split exactly once (DistributedDL's padding is not counted twice)."""
import json, os, shutil, subprocess, sys
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]

def test_two_cpu_processes_train_and_evaluate_the_whole_validation_set(tmp_path):
    torchrun = shutil.which('torchrun', path=str(Path(sys.executable).parent)) or shutil.which('torchrun')
    assert torchrun, 'torchrun not found next to the Python running the tests'
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONPATH=str(ROOT))
    r = subprocess.run([torchrun, '--nproc_per_node', '2', '--master_port', '29531', str(ROOT/'tests'/'ddp_tiny.py'), str(tmp_path)],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    ranks = [json.loads((tmp_path/f'rank{i}.json').read_text()) for i in range(2)]
    assert [o['world'] for o in ranks] == [2, 2] and all(o['initialized'] for o in ranks)
    assert ranks[0]['miou'] == ranks[1]['miou']          # the confusion matrix was summed across processes
    # the same weights, evaluated in this single process over the whole split, give the same mIoU
    from knowledge_adaptation.data import seg_dls
    from knowledge_adaptation.models import MobileNetV2Seg
    from knowledge_adaptation.metrics import miou
    dls = seg_dls('scenes', crop_size=32, bs=4, valid_bs=5, n_train=8, n_valid=5, device='cpu')
    student = MobileNetV2Seg(dls.n_classes)
    student.load_state_dict({k[len('student.'):]: v for k, v in
                             torch.load(tmp_path/'stage'/'final.pth', map_location='cpu', weights_only=True).items()
                             if k.startswith('student.')})
    x, y = dls.valid.one_batch()
    assert len(x) == 5
    with torch.no_grad(): ref, _ = miou(student.eval()(x), y, dls.n_classes)
    assert abs(ref - ranks[0]['miou']) < 1e-9, (ref, ranks[0]['miou'])
