"""bench/gpu.py, the GPU check, runs end to end: at tiny shapes on the CPU it prints every row of its tables."""
import os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

def test_gpu_bench_tiny_on_cpu():
    r = subprocess.run([sys.executable, str(ROOT/'bench'/'gpu.py'), '--tiny', '--device', 'cpu'], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env=dict(os.environ, OMP_NUM_THREADS='2', MPLBACKEND='Agg'))
    assert r.returncode == 0, f'bench/gpu.py failed:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}'
    lines = r.stdout.splitlines()
    assert lines[0].startswith('# GPU check: torch ') and 'CPU' in lines[0], lines[0]
    table = [[c.strip() for c in l.strip().strip('|').split('|')] for l in lines if l.startswith('| ')]
    steps, affinity = {(c[0], c[1]): c for c in table if len(c) == 5}, {c[0]: c for c in table if len(c) == 3}
    for prec in ('fp32', 'fp16'):
        for name in ('teacher step', 'student step: baseline', 'student step: baseline + teacher forward', 'student step: ka'):
            c = steps.get((name, prec))
            assert c is not None, f'no row {name!r} ({prec}) in:\n{r.stdout}'
            assert float(c[2]) > 0 and float(c[3]) > 0 and c[4] == '-', c   # seconds, images/s; no GPU memory on the CPU
        assert any(l.startswith(f'- KA overhead ({prec}): KA step') for l in lines), r.stdout
    for impl in ('gram', 'dense'):
        c = affinity.get(impl)
        assert c is not None and float(c[1]) > 0 and c[2] == '-', (impl, r.stdout)
