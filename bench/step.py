"""Median training-step time at the CPU preset: baseline student step, KA step (teacher forward included), and the
pieces the KA step is made of, so that the cost of the KA terms and adapters themselves can be read off.

    python bench/step.py                 # CPU preset (crop and batch from knowledge_adaptation.pipeline.PRESETS['cpu'])
    python bench/step.py --steps 20 --crop 96 --bs 16
    python bench/step.py --contiguous    # networks in contiguous memory order instead of the preset's channels-last
    python bench/step.py --preset ablation-tutorial --stride 4   # another preset (`PRESETS` or `ABLATION_PRESETS`), a student at OS4

A step is timed from fastai's `before_batch` to `after_step` (forward, loss, backward, optimiser step), inside a real
`KALearner.fit`, so every callback is included. 'baseline + teacher forward' is the baseline step with the frozen
teacher running on each batch (`TeacherFeatures`) and no term using it; '+ encoder forward' also runs the frozen
encoder E on the teacher's feature, as the KA step does (the code z = E(phi_t), also frozen). The rows are timed in
interleaved rounds, so that drifts in the machine's speed hit them alike.
Overhead of the KA terms = KA step - (baseline + teacher forward); target: at most 10% of the latter. It is printed
with the frozen encoder counted in the overhead, and without it (the terms and the adapters alone)."""
import argparse, statistics, sys, time
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch
from _machine import machine   # bench/_machine.py: the processor named the same way by every script
from fastai.callback.core import Callback, CancelFitException
from fastai.torch_core import set_seed
from knowledge_adaptation.data import seg_dls
from knowledge_adaptation.models import DeepLabV3Plus, MobileNetV2Seg
from knowledge_adaptation.autoencoder import KnowledgeTranslator, translator_strides
from knowledge_adaptation.training import TeacherFeatures
from knowledge_adaptation.distill import KALearner
from knowledge_adaptation.pipeline import get_preset, code_stride, with_memory_format
from knowledge_adaptation.presets import PRESETS
from knowledge_adaptation.ablations import ABLATION_PRESETS

class StepTimer(Callback):
    order = -100   # before every other callback, so before_batch starts the clock before the teacher runs
    def __init__(self, steps, warmup): self.steps, self.warmup, self.times = steps, warmup, []
    def before_batch(self): self.t0 = time.perf_counter()
    def after_step(self):
        self.times.append(time.perf_counter() - self.t0)
        if len(self.times) >= self.steps + self.warmup: raise CancelFitException()

class EncoderForward(TeacherFeatures):
    "The teacher's feature, then the frozen encoder's code of it on each training batch, as `KADistill` computes them; nothing uses the code."
    def __init__(self, teacher, encoder): super().__init__(teacher, run_valid=False); self.encoder = encoder
    def before_batch(self):
        super().before_batch()
        with torch.no_grad(): self.code = self.encoder.encode(self.learn.teacher_feature)

def time_learner(learn, steps, warmup):
    t = StepTimer(steps, warmup)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, cbs=t)
    return t.times[warmup:]

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    presets = {**PRESETS, **{v.name: v for v in ABLATION_PRESETS.values()}}   # 'ablation-cpu', 'ablation-tutorial' by their names
    p.add_argument('--preset', default='cpu', choices=sorted(presets))
    cfg = presets[p.parse_known_args()[0].preset]
    p.add_argument('--crop', type=int, default=cfg.crop_size or 128)
    p.add_argument('--bs', type=int, default=cfg.bs)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--rounds', type=int, default=4)
    p.add_argument('--stride', type=int, default=cfg.student_stride, choices=(4, 8, 16, 32), help="the student's output stride")
    p.add_argument('--contiguous', action='store_true', help='networks in contiguous memory order (the preset: channels-last)')
    a = p.parse_args()
    if a.contiguous: cfg = replace(cfg, channels_last=False)
    n_train = a.bs * (a.steps + a.warmup + 1)
    dls = seg_dls(cfg.dataset, crop_size=a.crop, bs=a.bs, n_train=n_train, n_valid=a.bs, device='cpu')
    n = dls.n_classes
    set_seed(0)
    teacher = with_memory_format(cfg, DeepLabV3Plus(n, cfg.teacher_backbone, cfg.teacher_stride).eval())
    tr = KnowledgeTranslator(teacher.feature_channels, cfg.latent_ch, translator_strides(teacher.feature_stride, code_stride(cfg, a.stride)))   # the code grid of a student at a.stride
    tr = with_memory_format(cfg, tr.eval())
    learners = {}
    # (row, distillation terms, the frozen networks that run on each batch although no term uses them)
    frozen_only = {'teacher': lambda: TeacherFeatures(teacher, run_valid=False), 'encoder': lambda: EncoderForward(teacher, tr)}
    for name, terms, frozen in (('baseline', (), None), ('baseline + teacher forward', (), 'teacher'),
                                ('baseline + teacher and encoder forward', (), 'encoder'),
                                ('ka', ('adapt', 'aff'), None), ('adapt only', ('adapt',), None), ('aff only', ('aff',), None)):
        set_seed(0)
        extra = [frozen_only[frozen]()] if frozen else None
        learn = KALearner(dls, MobileNetV2Seg(n, a.stride), teacher, tr, terms=terms, lr=cfg.student_lr, cbs=extra)
        with_memory_format(cfg, learn.model)   # as train_student does
        learners[name] = learn
    times = {k: [] for k in learners}
    for _ in range(a.rounds):          # interleaved, so that the machine's drifts in speed hit every row alike
        for k, learn in learners.items(): times[k] += time_learner(learn, a.steps, a.warmup)
    res = {k: statistics.median(v) for k, v in times.items()}
    print(f'# {cfg.name} ({cfg.dataset}), student at OS{a.stride}, training step, crop {a.crop}, batch {a.bs}, code at output stride {teacher.feature_stride * tr.stride}, '
          f'{"channels-last" if cfg.channels_last else "contiguous"} networks, {machine()}, '
          f'median of {a.rounds} x {a.steps} steps')
    print('| what | seconds per step | images/s |')
    print('|---|---|---|')
    for k, v in res.items(): print(f'| student step: {k} | {v:.3f} | {a.bs / v:.0f} |')
    base, ov = res['baseline + teacher forward'], res['ka'] - res['baseline + teacher forward']
    enc = res['baseline + teacher and encoder forward'] - base
    print(f'\nKA step {res["ka"]:.3f} s = baseline step with the teacher forward ({base:.3f} s) + {ov:.3f} s '
          f'({100 * ov / base:+.1f}%: the KA terms, the adapters and the frozen encoder; target <= +10%)')
    print(f'of which the frozen encoder forward {enc:.3f} s ({100 * enc / base:+.1f}%), the KA terms and adapters alone '
          f'{ov - enc:.3f} s ({100 * (ov - enc) / base:+.1f}%)')

if __name__ == '__main__': main()
