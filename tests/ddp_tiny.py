"""A tiny two-stage run for tests/test_distributed.py: launched as `torchrun --nproc_per_node 2 tests/ddp_tiny.py OUT`.

Trains a baseline student one epoch under fastai's DDP (gloo on the CPU), then evaluates it on the validation split
(5 images, batches of 2: fastai's DistributedDL pads the split to 6), and writes what each rank measured."""
import json, sys
from pathlib import Path
import torch
from fastai.torch_core import set_seed, rank_distrib, num_distrib
from knowledge_adaptation.data import seg_dls
from knowledge_adaptation.models import MobileNetV2Seg
from knowledge_adaptation.distill import KALearner
from knowledge_adaptation.training import fit_resumable, evaluate

out = Path(sys.argv[1])
torch.set_num_threads(1)
dls = seg_dls('scenes', crop_size=32, bs=4, valid_bs=2, n_train=8, n_valid=5, device='cpu')
set_seed(0)
student = MobileNetV2Seg(dls.n_classes)
learn = KALearner(dls, student, terms=(), lr=0.01)
with learn.no_bar(): state = fit_resumable(learn, 1, out/'stage', seed=0)
res = evaluate(student, dls)
(out/f'rank{rank_distrib()}.json').write_text(json.dumps(dict(
    rank=rank_distrib(), world=num_distrib(), initialized=torch.distributed.is_initialized(),
    miou=res['miou'], per_class=res['per_class'], epochs_done=state['epochs_done'])))
