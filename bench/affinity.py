"""Dense vs gram affinity loss (Eq. 4): forward+backward time, extra peak memory, and agreement.

    python bench/affinity.py                  # c=256, m in 1024 4096 16384 32768
    python bench/affinity.py --m 4096 --reps 5

Each (impl, m) runs in a fresh subprocess so that its peak resident memory (Linux VmHWM) is its own; "extra memory" is
the peak minus the resident size just before the loss was called (inputs already allocated, after one warm-up step
so that one-time buffers of the BLAS and thread pools are not counted). Memory is measured
in a second child with a fixed glibc mmap threshold (MALLOC_MMAP_THRESHOLD_), so that freed tensors go back to the
system and the peak resident size follows the peak of live tensors, not what the allocator happens to keep; times
come from a child with the allocator as it is (returning every buffer to the system would slow the timed code down). Dense is skipped where
its estimated need exceeds --dense-max-gib. Times are medians of --reps runs after one warm-up."""
import argparse, json, os, subprocess, sys, time, statistics

def _status(key):
    for line in open('/proc/self/status'):
        if line.startswith(key): return int(line.split()[1]) * 1024
    raise KeyError(key)

def _reset_peak():
    "Reset VmHWM to the current RSS (Linux >= 4.0), so the peak measured is the loss's own."
    try:
        with open('/proc/self/clear_refs', 'w') as f: f.write('5')
    except OSError: pass

def _side(m):
    h = int(m ** 0.5)
    while m % h: h -= 1
    return h, m // h

def child(impl, m, c, reps, acc):
    import torch
    from knowledge_adaptation.losses import affinity_loss
    torch.manual_seed(0)
    h, w = _side(m)
    fs, ft = torch.randn(1, c, h, w, requires_grad=True), torch.randn(1, c, h, w)
    acc_dtype = {'float64': torch.float64, 'float32': torch.float32, 'auto': 'auto'}[acc]
    def step(a=fs, b=ft):
        a.grad = None
        affinity_loss(a, b, impl=impl, acc_dtype=acc_dtype).backward()
    step()                                   # warm-up: kernels, thread pools and BLAS buffers are set up once
    _reset_peak(); before = _status('VmRSS:')
    step()                                   # the steady-state memory measurement
    extra = _status('VmHWM:') - before
    times = []
    for _ in range(reps):
        t0 = time.perf_counter(); step(); times.append(time.perf_counter() - t0)
    print(json.dumps(dict(impl=impl, m=m, c=c, acc=acc, sec=statistics.median(times), extra_mib=extra / 2**20,
                          threads=torch.get_num_threads())))

def agreement(m, c, dtype):
    "Largest relative difference between dense and gram, over the loss and both gradients."
    import torch
    from knowledge_adaptation.losses import affinity_loss
    torch.manual_seed(1)
    h, w = _side(m)
    out = []
    fs0, ft0 = torch.randn(2, c, h, w, dtype=dtype), torch.randn(2, c // 2, h, w, dtype=dtype)
    for impl in ('dense', 'gram'):
        fs, ft = fs0.clone().requires_grad_(), ft0.clone().requires_grad_()
        l = affinity_loss(fs, ft, impl=impl); l.backward()
        out.append((l.detach(), fs.grad, ft.grad))
    return max(((a - b).abs().max() / b.abs().max()).item() for a, b in zip(out[1], out[0]))

def _child(impl, m, c, reps, acc, env):
    r = subprocess.run([sys.executable, __file__, '--child', impl, str(m), str(c), str(reps), acc],
                       capture_output=True, text=True, env=env)
    if r.returncode: return dict(impl=impl, m=m, error=r.stderr.strip().splitlines()[-1])
    return json.loads(r.stdout.strip().splitlines()[-1])

def run(impl, m, c, reps, acc):
    "Time with the allocator as it is; memory in a second child whose allocator returns freed memory at once."
    timed = _child(impl, m, c, reps, acc, dict(os.environ))
    if 'error' in timed: return timed
    mem = _child(impl, m, c, 1, acc, dict(os.environ, MALLOC_MMAP_THRESHOLD_='65536'))
    return dict(timed, extra_mib=mem.get('extra_mib', float('nan')))

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--m', type=int, nargs='+', default=[1024, 4096, 16384, 32768])
    p.add_argument('--c', type=int, default=256)
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--dense-max-gib', type=float, default=12., help='skip dense where 6 m^2 float32 matrices exceed this')
    p.add_argument('--child', nargs=5, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        impl, m, c, reps, acc = a.child; return child(impl, int(m), int(c), int(reps), acc)
    import torch
    from _machine import machine
    print(f'# affinity loss, forward+backward, batch 1, c={a.c}; {machine()}')
    print('| m | dense s | dense extra MiB | gram (auto) s | gram (auto) extra MiB | gram f64 s | speed-up | memory ratio | max rel diff, float32 / float64 inputs |')
    print('|---|---|---|---|---|---|---|---|---|')
    for m in a.m:
        dense_fits = 6 * m * m * 4 / 2**30 <= a.dense_max_gib
        d = run('dense', m, a.c, a.reps, 'float32') if dense_fits else None
        g = run('gram', m, a.c, a.reps, 'auto')
        g64 = run('gram', m, a.c, a.reps, 'float64')
        agree = f'{agreement(m, a.c, torch.float32):.1e} / {agreement(m, a.c, torch.float64):.1e}' if m <= 4096 else '-'
        ds = f"{d['sec']:.3f}" if d and 'sec' in d else ('skipped (memory)' if not d else d['error'])
        dm = f"{d['extra_mib']:.0f}" if d and 'sec' in d else '-'
        sp = f"{d['sec'] / g['sec']:.1f}x" if d and 'sec' in d else '-'
        mr = f"{d['extra_mib'] / max(g['extra_mib'], 1e-3):.0f}x" if d and 'sec' in d else '-'
        print(f"| {m} | {ds} | {dm} | {g['sec']:.3f} | {g['extra_mib']:.0f} | {g64['sec']:.3f} | {sp} | {mr} | {agree} |", flush=True)

if __name__ == '__main__': main()
