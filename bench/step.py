"""Median training-step time at the CPU preset: baseline student step, KA step (teacher forward included), and the
pieces the KA step is made of, so that the cost of the KA terms and adapters themselves can be read off.

    python bench/step.py                 # CPU preset (crop and batch from knowledge_adaptation.distill.PRESETS['cpu'])
    python bench/step.py --steps 20 --crop 96 --bs 16

A step is timed from fastai's `before_batch` to `after_step` (forward, loss, backward, optimiser step), inside a real
`KALearner.fit`, so every callback is included. The teacher forward is timed on its own on the same batches.
Overhead of the KA terms = KA step - (baseline step + teacher forward); target: at most 10% of the latter."""
import argparse, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch
from fastai.callback.core import Callback, CancelFitException
from fastai.torch_core import set_seed
from knowledge_adaptation.data import seg_dls
from knowledge_adaptation.models import DeepLabV3Plus, MobileNetV2Seg
from knowledge_adaptation.autoencoder import KnowledgeTranslator, translator_strides
from knowledge_adaptation.distill import KALearner, get_preset, code_stride

class StepTimer(Callback):
    order = -100   # before every other callback, so before_batch starts the clock before the teacher runs
    def __init__(self, steps, warmup): self.steps, self.warmup, self.times = steps, warmup, []
    def before_batch(self): self.t0 = time.perf_counter()
    def after_step(self):
        self.times.append(time.perf_counter() - self.t0)
        if len(self.times) >= self.steps + self.warmup: raise CancelFitException()

def time_learner(learn, steps, warmup):
    t = StepTimer(steps, warmup)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, cbs=t)
    return statistics.median(t.times[warmup:])

def main():
    cfg = get_preset('cpu')
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--crop', type=int, default=cfg.crop_size or 128)
    p.add_argument('--bs', type=int, default=cfg.bs)
    p.add_argument('--steps', type=int, default=15)
    p.add_argument('--warmup', type=int, default=3)
    a = p.parse_args()
    n_train = a.bs * (a.steps + a.warmup + 1)
    dls = seg_dls('scenes', crop_size=a.crop, bs=a.bs, n_train=n_train, n_valid=a.bs, device='cpu')
    n = dls.n_classes
    set_seed(0)
    teacher = DeepLabV3Plus(n, cfg.teacher_backbone, cfg.teacher_stride).eval()
    tr = KnowledgeTranslator(teacher.feature_channels, cfg.latent_ch, translator_strides(teacher.feature_stride, code_stride(cfg))).eval()   # the preset's code grid
    batches = [b for _, b in zip(range(a.steps + a.warmup), dls.train)]
    with torch.no_grad():
        tt = []
        for x, _ in batches:
            t0 = time.perf_counter(); teacher(x); tt.append(time.perf_counter() - t0)
    t_fwd = statistics.median(tt[a.warmup:])
    res = {}
    for name, terms in (('baseline', ()), ('ka', ('adapt', 'aff')), ('adapt only', ('adapt',)), ('aff only', ('aff',))):
        set_seed(0)
        learn = KALearner(dls, MobileNetV2Seg(n, cfg.student_stride), teacher, tr, terms=terms, lr=cfg.student_lr)
        res[name] = time_learner(learn, a.steps, a.warmup)
    base = res['baseline'] + t_fwd
    print(f'# training step, crop {a.crop}, batch {a.bs}, code at output stride {teacher.feature_stride * tr.stride}, {torch.get_num_threads()} threads, median of {a.steps} steps')
    print('| what | seconds per step | images/s |')
    print('|---|---|---|')
    print(f'| teacher forward (no grad) | {t_fwd:.3f} | {a.bs / t_fwd:.0f} |')
    for k, v in res.items(): print(f'| student step: {k} | {v:.3f} | {a.bs / v:.0f} |')
    ov = res['ka'] - base
    print(f'\nKA step {res["ka"]:.3f} s = baseline step + teacher forward ({base:.3f} s) + {ov:.3f} s '
          f'({100 * ov / base:+.1f}%: the KA terms, encoder and adapters; target <= +10%)')

if __name__ == '__main__': main()
