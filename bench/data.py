"""Training-loader throughput of `seg_dls` (images/s), for the two embedded datasets (scenes, digits) and a VOC-layout fixture.

Usage:  python bench/data.py [--batches 40] [--bs 8] [--crops 96 128] [--workers 0 2]

The loader must not be the bottleneck of a CPU training step: compare its rate with the student step's images/s that
`bench/step.py` measures on the same machine (the knowledge-adaptation step is slower). Each row reports
the steady-state rate (from the first batch to the last, after worker start-up) and the start-up time of a pass
(`iter` to the first batch: forking workers and the first batches). The VOC fixture is written to a temporary folder:
VOC-sized JPEGs (about 500x375) with palette PNG masks, in VOC's layout.
Timings on shared cores are noisy: rerun, and compare rows of one run rather than across runs.
"""
import argparse, os, tempfile, time, warnings
from pathlib import Path

import torch

from knowledge_adaptation.data import seg_dls
from knowledge_adaptation.testing import make_voc_fixture


def throughput(dls, n_batches):
    "Steady-state images/s over `n_batches` training batches, and seconds from `iter` to the first batch."
    t0 = time.perf_counter()
    it = iter(dls.train)
    x, _ = next(it)
    t1 = time.perf_counter()
    n = 0
    for _ in range(n_batches):
        try: x, _ = next(it)
        except StopIteration: break
        n += x.shape[0]
    t2 = time.perf_counter()
    del it
    return n / (t2 - t1), t1 - t0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--batches', type=int, default=40, help='batches timed per row (after the first)')
    p.add_argument('--bs', type=int, default=8)
    p.add_argument('--crops', type=int, nargs='+', default=[96, 128])
    p.add_argument('--workers', type=int, nargs='+', default=[0, 2])
    args = p.parse_args()
    warnings.filterwarnings('ignore')
    print(f'torch {torch.__version__}, {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, '
          f'load average {os.getloadavg()[0]:.1f}')
    n_train = (args.batches + 2) * args.bs
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        root = make_voc_fixture(Path(tmp), n_train=n_train, n_val=2, size=(375, 500))
        print(f'VOC fixture: {n_train} images of about 500x375 written in {time.perf_counter() - t:.1f} s')
        rows = []
        for name, kw in (('scenes', dict(n_train=n_train, n_valid=8)), ('digits', dict(n_train=n_train, n_valid=8)),
                         ('voc', dict(root=root))):
            for crop in args.crops:
                for nw in args.workers:
                    dls = seg_dls(name, crop_size=crop, bs=args.bs, num_workers=nw, device='cpu', **kw)
                    rate, start = throughput(dls, args.batches)
                    rows.append((name, crop, nw, rate, start))
                    print(f'{name:7s} crop {crop:4d}  workers {nw}  {rate:7.1f} images/s  (start-up {start:.2f} s)',
                          flush=True)


if __name__ == '__main__': main()
