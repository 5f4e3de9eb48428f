#!/usr/bin/env python
"""CPU inference latency of the student (MobileNetV2Seg at output strides 16/8/4) and the teacher (DeepLabV3Plus,
ResNet-18 and ResNet-50 at output stride 8), before and after each speed trick, beside fvcore's MAC counts.

Batch 1, `torch.inference_mode`, random weights (latency does not depend on them), median of `--runs` timed runs after
`--warmup` untimed ones; the tricks of one model take turns run after run. Tricks (each applied to a fresh copy of the model):

  baseline        eval mode, NCHW input
  channels_last   weights and input in channels-last (NHWC) memory format
  fuse_bn         BatchNorm folded into the preceding conv (`knowledge_adaptation.models.fuse_bn_`)
  fuse_bn+cl      both (= `prepare_for_inference`)
  jit_freeze      torch.jit.trace + torch.jit.freeze + torch.jit.optimize_for_inference (for comparison only: folds BN
                  and converts to oneDNN layouts; TorchScript is deprecated, so the library does not use it)
  onnx            `knowledge_adaptation.predict.export_onnx`, run by onnxruntime with as many intra-op threads as torch
                  (a numpy input; only when onnx and onnxruntime are installed: pip install -e '.[onnx]')

Example: python bench/models.py --size 512 --runs 5 --models s16,s8,s4,t18,t50
"""
import argparse, copy, importlib.util, statistics, sys, tempfile, time, warnings
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch
from _machine import machine   # bench/_machine.py: the processor named the same way by every script
from knowledge_adaptation.models import DeepLabV3Plus, MobileNetV2Seg, fuse_bn_, prepare_for_inference
from knowledge_adaptation.complexity import count_complexity

MODELS = {'s16': ('student OS16', lambda nc: MobileNetV2Seg(nc, 16)),
          's8':  ('student OS8', lambda nc: MobileNetV2Seg(nc, 8)),
          's4':  ('student OS4', lambda nc: MobileNetV2Seg(nc, 4)),
          't18': ('teacher resnet18 OS8', lambda nc: DeepLabV3Plus(nc, 'resnet18', 8)),
          't50': ('teacher resnet50 OS8', lambda nc: DeepLabV3Plus(nc, 'resnet50', 8))}

def _cl(x): return x.to(memory_format=torch.channels_last)

def _jit(m, x):
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter('ignore')
        t = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(m, x)))
    return t, x

def _onnx(m, x):
    from knowledge_adaptation.predict import export_onnx, onnx_session
    with tempfile.TemporaryDirectory() as d:       # the session holds the graph once it is built
        sess = onnx_session(export_onnx(m, Path(d)/'model.onnx'), threads=torch.get_num_threads())
    name = sess.get_inputs()[0].name
    return (lambda xi: torch.from_numpy(sess.run(None, {name: xi})[0])), x.numpy()

HAS_ONNX = all(importlib.util.find_spec(k) is not None for k in ('onnx', 'onnxruntime'))
TRICKS = {'baseline':      lambda m, x: (m, x),
          'channels_last': lambda m, x: (m.to(memory_format=torch.channels_last), _cl(x)),
          'fuse_bn':       lambda m, x: (fuse_bn_(m), x),
          'fuse_bn+cl':    lambda m, x: (prepare_for_inference(m), _cl(x)),
          'jit_freeze':    _jit,
          'onnx':          _onnx}

def time_interleaved(variants:dict, runs:int, warmup:int) -> dict:
    """Seconds per forward pass of each `name -> (model, input)`, the variants taking turns run after run, so that load
    from other processes spreads over all of them instead of biasing whichever ran at a busy moment."""
    times = {k: [] for k in variants}
    with torch.inference_mode():
        for i in range(warmup + runs):
            for k, (m, x) in variants.items():
                t = time.perf_counter(); m(x); dt = time.perf_counter() - t
                if i >= warmup: times[k].append(dt)
    return times

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--size', type=int, default=512, help='input height and width (default 512)')
    p.add_argument('--runs', type=int, default=5, help='timed runs per model and trick (default 5)')
    p.add_argument('--warmup', type=int, default=2, help='untimed runs first (default 2)')
    p.add_argument('--models', default='s16,s8,s4,t18,t50', help=f'comma-separated, from {",".join(MODELS)}')
    p.add_argument('--tricks', default=','.join(t for t in TRICKS if HAS_ONNX or t != 'onnx'),
                   help=f'comma-separated, from {",".join(TRICKS)} (default: all; onnx only when onnxruntime is installed)')
    p.add_argument('--num_classes', type=int, default=21)
    p.add_argument('--threads', type=int, default=0, help='torch.set_num_threads (default: torch\'s choice)')
    p.add_argument('--no_flops', action='store_true', help='skip the fvcore counts')
    a = p.parse_args(argv)
    models, tricks = a.models.split(','), a.tricks.split(',')
    for k in models:
        if k not in MODELS: p.error(f'unknown model {k!r}; choose from {list(MODELS)}')
    for k in tricks:
        if k not in TRICKS: p.error(f'unknown trick {k!r}; choose from {list(TRICKS)}')
    if 'onnx' in tricks and not HAS_ONNX: p.error("the onnx trick needs onnx and onnxruntime: pip install -e '.[onnx]'")
    if a.threads: torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.randn(1, 3, a.size, a.size)
    print(f'# CPU latency, batch 1, {a.size}x{a.size}, median of {a.runs} runs after {a.warmup} warm-up; '
          f'{machine()}, oneDNN (mkldnn) '
          f'{"on" if torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled else "off"}'
          + (f'; onnxruntime {importlib.import_module("onnxruntime").__version__}' if 'onnx' in tricks else '') + '\n')
    res, macs = {}, {}
    for k in models:
        name, build = MODELS[k]
        base = build(a.num_classes).eval()
        if not a.no_flops: macs[k] = count_complexity(base, (1, 3, a.size, a.size))['macs']
        with torch.inference_mode(): ref = base(x)
        variants, errs = {t: TRICKS[t](copy.deepcopy(base), x) for t in tricks}, {}
        with torch.inference_mode():
            for t, (m, xi) in variants.items(): errs[t] = (m(xi) - ref).abs().max().item() / ref.abs().max().item()
        for t, ts in time_interleaved(variants, a.runs, a.warmup).items():
            res[k, t] = (statistics.median(ts), min(ts), errs[t])
            print(f'  {name:22s} {t:14s} median {res[k, t][0]*1e3:8.1f} ms', file=sys.stderr, flush=True)
        del variants
    print('| model | GMAC (fvcore) | trick | median ms | min ms | speed-up vs baseline | max rel. diff vs baseline |')
    print('|---|---|---|---|---|---|---|')
    for k in models:
        for t in tricks:
            med, mn, err = res[k, t]
            up = f"{res[k, 'baseline'][0] / med:.2f}x" if 'baseline' in tricks else ''
            g = f'{macs[k]/1e9:.2f}' if k in macs else ''
            print(f'| {MODELS[k][0]} | {g} | {t} | {med*1e3:.1f} | {mn*1e3:.1f} | {up} | {err:.1e} |')
    if 's16' in models and 's4' in models:
        print('\n| trick | latency OS16 / OS4 | fvcore MACs OS16 / OS4 |\n|---|---|---|')
        fr = f"{macs['s16'] / macs['s4']:.1%}" if macs else 'n/a'
        for t in tricks: print(f"| {t} | {res['s16', t][0] / res['s4', t][0]:.1%} | {fr} |")

if __name__ == '__main__': main()
