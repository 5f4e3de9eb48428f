"""GPU check at the paper's shapes: training-step throughput and peak memory of the teacher, the baseline student and
the KA student, in float32 and in mixed precision; then the dense and gram affinity losses at Cityscapes' size.

    python bench/gpu.py                        # 513x513 crops, batch 16, on CUDA when there is one
    python bench/gpu.py --steps 20 --bs 8
    python bench/gpu.py --tiny --device cpu    # a smoke test of the script itself (seconds, tiny shapes)

Networks (random weights, 21 classes): the teacher is DeepLabV3+ on ResNet-50 at output stride 8, the student
MobileNetV2 at output stride 16, the translator KnowledgeTranslator(256, 256) from the teacher's stride-4 decoder
feature to a stride-16 code. Each row trains its own freshly built networks on synthetic batches (random images and
labels) inside a real fastai `fit`; a step is timed from `before_batch` to `after_step` (forward, the teacher's forward
where there is one, loss, backward, optimiser step), with the device synchronised at both ends; the median over
--steps steps after --warmup ones. Peak memory is `torch.cuda.max_memory_allocated`, reset before each row, with
nothing else left on the device. Rows:

- teacher step: stage 0, `teacher_learner` (+ fastai's `MixedPrecision` in fp16);
- student step, baseline: `KALearner` with no term (cross-entropy only);
- student step, baseline + teacher forward: the same, with the frozen teacher run on each batch and nothing using it;
- student step, KA: `KALearner` with terms ('adapt', 'aff'), `fp16=True` in fp16 (the terms stay in float32).

KA overhead = KA step - (baseline + teacher forward): the cost of the terms, the adapters and the frozen encoder.
The affinity rows time `affinity_loss(fs, ft, impl=...)` forward + backward on (1, 256, h, w) float32 features
(--affinity_hw, default 128x256: a 1024x2048 image at stride 8); dense builds two m x m matrices (m = h*w: 4 GiB each
at the default), gram works from 256 x 256 Gram matrices. A row that runs out of memory says so and the next one runs;
one that fails otherwise prints its traceback to stderr, the others still run, and the exit status is 1."""
import argparse, gc, statistics, sys, time, traceback
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch
from _machine import cpu_name   # bench/_machine.py: the processor named the same way by every script
from torch.utils.data import Dataset, TensorDataset
from fastai.callback.core import Callback, CancelFitException
from fastai.callback.fp16 import MixedPrecision
from fastai.data.core import DataLoaders
from fastai.data.load import DataLoader
from fastai.torch_core import set_seed
from knowledge_adaptation.models import DeepLabV3Plus, MobileNetV2Seg
from knowledge_adaptation.autoencoder import KnowledgeTranslator, translator_strides
from knowledge_adaptation.training import TeacherFeatures
from knowledge_adaptation.distill import KALearner
from knowledge_adaptation.pipeline import teacher_learner
from knowledge_adaptation.losses import affinity_loss

N_CLASSES = 21
TINY = dict(size=64, bs=2, steps=1, warmup=0, affinity_hw='8x16', teacher='resnet18')

def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)

class StepTimer(Callback):
    "Seconds from `before_batch` to `after_step` of each training step; stops the fit after `warmup + steps` steps."
    order = -100   # before every other callback: the clock starts before the teacher's forward
    def __init__(self, steps, warmup, device): self.steps, self.warmup, self.device, self.times = steps, warmup, device, []
    def before_batch(self): sync(self.device); self.t0 = time.perf_counter()
    def after_step(self):
        sync(self.device); self.times.append(time.perf_counter() - self.t0)
        if len(self.times) >= self.steps + self.warmup: raise CancelFitException()

class Cycled(Dataset):
    "`n` items cycling through the few of `ds`: as many batches as a fit needs, without holding them all in memory."
    def __init__(self, ds, n): self.ds, self.n = ds, n
    def __len__(self): return self.n
    def __getitem__(self, i): return self.ds[i % len(self.ds)]

def synthetic_dls(size, bs, n_batches, device):
    "fastai `DataLoaders` of random images and labels (two distinct batches, cycled), `n_classes` set."
    g = torch.Generator().manual_seed(0)
    k = 2 * bs
    ds = TensorDataset(torch.randn(k, 3, size, size, generator=g), torch.randint(0, N_CLASSES, (k, size, size), generator=g))
    dls = DataLoaders(DataLoader(Cycled(ds, bs * n_batches), bs=bs, shuffle=False, drop_last=True),
                      DataLoader(Cycled(ds, bs), bs=bs), device=device)
    dls.n_classes = N_CLASSES
    return dls

def free(device):
    gc.collect()
    if device.type == 'cuda': torch.cuda.empty_cache()

def is_oom(e): return isinstance(e, torch.cuda.OutOfMemoryError) or 'out of memory' in str(e).lower()

FAILED = []   # rows that failed for another reason than memory: the exit status is 1 if any

def measure(device, run, name):
    "`run()` on a clean device: `(result, peak GiB or None, error or None)`; errors are reported, not raised."
    free(device)
    if device.type == 'cuda': torch.cuda.reset_peak_memory_stats(device)
    res, err = None, None
    try: res = run()
    except Exception as e:
        if is_oom(e): err = 'out of memory'
        else:
            err = f'failed: {type(e).__name__}'
            FAILED.append(name); print(f'{name} failed:', file=sys.stderr); traceback.print_exc()
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == 'cuda' else None
    free(device)
    return res, peak, err

def time_learner(learn, a, device):
    t = StepTimer(a.steps, a.warmup, device)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, cbs=t)
    if len(t.times) < a.steps + a.warmup: raise RuntimeError(f'the fit ended after {len(t.times)} steps')
    return statistics.median(t.times[a.warmup:])

def step_row(kind, fp16, a, dls, device):
    "Median seconds of one training step of `kind` ('teacher', 'baseline', 'baseline + teacher forward', 'ka')."
    set_seed(0)
    teacher = DeepLabV3Plus(N_CLASSES, a.teacher, 8) if kind != 'baseline' else None
    if kind == 'teacher':
        learn = teacher_learner(dls, teacher, cbs=[MixedPrecision()] if fp16 else None)
    else:
        student = MobileNetV2Seg(N_CLASSES, 16)
        if kind == 'ka':
            tr = KnowledgeTranslator(teacher.feature_channels, 256, translator_strides(teacher.feature_stride, 16)).eval()
            learn = KALearner(dls, student, teacher.eval(), tr, terms=('adapt', 'aff'), fp16=fp16)
        else:
            extra = [TeacherFeatures(teacher.eval(), run_valid=False, autocast=fp16)] if 'teacher' in kind else None
            learn = KALearner(dls, student, terms=(), fp16=fp16, cbs=extra)
    return time_learner(learn, a, device)

def affinity_row(impl, h, w, a, device):
    "Median seconds of `affinity_loss` forward + backward (student side) on (1, 256, h, w) float32 features."
    g = torch.Generator(device=device).manual_seed(0)
    fs = torch.randn(1, 256, h, w, device=device, generator=g, requires_grad=True)
    ft = torch.randn(1, 256, h, w, device=device, generator=g)
    times = []
    for i in range(a.warmup + a.steps):
        fs.grad = None
        sync(device); t0 = time.perf_counter()
        affinity_loss(fs, ft, impl=impl).backward()
        sync(device); times.append(time.perf_counter() - t0)
    return statistics.median(times[a.warmup:])

def fmt_mem(peak, device): return '-' if device.type != 'cuda' or peak is None else f'{peak:.2f}'

def machine(device) -> str:
    s = f'torch {torch.__version__}, '
    if device.type == 'cuda':
        p = torch.cuda.get_device_properties(device)
        s += (f'CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, {p.name}, {p.total_memory / 2**30:.1f} GiB, '
              f'TF32 conv {torch.backends.cudnn.allow_tf32} / matmul {torch.backends.cuda.matmul.allow_tf32}')
    else: s += f'CPU ({cpu_name()}), {torch.get_num_threads()} threads'
    return s

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--size', type=int, default=513, help='crop side')
    p.add_argument('--bs', type=int, default=16)
    p.add_argument('--steps', type=int, default=10, help='timed steps per row')
    p.add_argument('--warmup', type=int, default=3, help='untimed steps before them (cuDNN autotuning, allocator)')
    p.add_argument('--affinity_hw', default='128x256', help='h x w of the affinity features (1024x2048 at stride 8)')
    p.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    p.add_argument('--teacher', default='resnet50', help='the teacher\'s ResNet (paper: resnet50)')
    p.add_argument('--tiny', action='store_true', help=f'a smoke test: {TINY}')
    a = p.parse_args(argv)
    if a.tiny:
        for k, v in TINY.items(): setattr(a, k, v)
    device = torch.device(a.device)
    if device.type == 'cuda': torch.backends.cudnn.benchmark = True
    h, w = (int(v) for v in a.affinity_hw.lower().split('x'))

    print(f'# GPU check: {machine(device)}')
    print(f'\ncrops {a.size}x{a.size}, batch {a.bs}, {N_CLASSES} classes; teacher DeepLabV3+ {a.teacher} OS8, student '
          f'MobileNetV2 OS16, translator 256 -> 256 (code at stride 16); median of {a.steps} steps after {a.warmup}\n')
    print('| row | precision | seconds per step | images/s | peak memory (GiB) |')
    print('|---|---|---|---|---|', flush=True)
    dls = synthetic_dls(a.size, a.bs, a.steps + a.warmup + 1, device)
    res = {}
    for prec, fp16 in (('fp32', False), ('fp16', True)):
        for kind in ('teacher', 'baseline', 'baseline + teacher forward', 'ka'):
            name = 'teacher step' if kind == 'teacher' else f'student step: {kind}'
            sec, peak, err = measure(device, lambda: step_row(kind, fp16, a, dls, device), f'{name} ({prec})')
            res[prec, kind] = sec
            cells = [err, '-'] if err else [f'{sec:.4f}', f'{a.bs / sec:.1f}']
            print(f'| {name} | {prec} | {" | ".join(cells)} | {fmt_mem(peak, device)} |', flush=True)
    print()
    for prec in ('fp32', 'fp16'):
        ka, base = res[prec, 'ka'], res[prec, 'baseline + teacher forward']
        if ka is None or base is None: print(f'- KA overhead ({prec}): not measured (a row failed)'); continue
        print(f'- KA overhead ({prec}): KA step {ka:.4f} s - (baseline + teacher forward) {base:.4f} s = {ka - base:+.4f} s '
              f'({100 * (ka - base) / base:+.1f}%)')
    if device.type != 'cuda':
        print('- on the CPU, fastai\'s MixedPrecision (CUDA autocast) leaves the student in float32; the teacher\'s '
              'forward runs under CPU autocast (bfloat16)')

    print(f'\n## affinity loss, forward + backward, (1, 256, {h}, {w}) float32: m = {h * w} positions; '
          f'median of {a.steps} after {a.warmup}\n')
    print('| impl | seconds | peak memory (GiB) |')
    print('|---|---|---|', flush=True)
    for impl in ('gram', 'dense'):
        sec, peak, err = measure(device, lambda: affinity_row(impl, h, w, a, device), f'affinity {impl}')
        print(f'| {impl} | {err or f"{sec:.4f}"} | {fmt_mem(peak, device)} |', flush=True)
    if FAILED: print(f'\nfailed rows (see stderr): {", ".join(FAILED)}'); return 1
    return 0

if __name__ == '__main__': sys.exit(main())
