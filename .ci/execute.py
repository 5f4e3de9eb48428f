"""Execute notebooks with every cell, the `slow` ones included, and save them with their outputs, the way a reader sees them.

    python .ci/execute.py nbs/04_distill.ipynb [nbs/05_ablations.ipynb ...]      # from the repository root

Each notebook runs in its own folder (`nbs/`), as `nbdev_test` runs it, with execnb (nbdev's own executor). A cell that
fails stops the notebook and leaves the file as it was. Progress bars print with carriage returns to a console; only what
a terminal would show at the end is kept (the finished tables). Run `nbdev_clean` afterwards: CI checks the notebooks are
clean, and nbdev_clean keeps outputs. The slow cells of 01-04 and 09 share the tutorial run in `nbs/ka_tutorial`: it trains
once (over an hour on two cores) and is read back after, so run the notebooks one at a time."""
import re, subprocess, sys, time, warnings
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory

DPI = 60
# fastai's import calls the deprecated `torch.jit.script`; the package silences it when imported first, a notebook that
# imports fastai first would show it in its first cell: noise for a reader, and nothing of ours. The cells' warnings
# start from this process's filters, so one filter here is enough.
warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated', category=FutureWarning)

def terminal_text(text:str) -> str:
    "What a terminal shows of `text` once printed: each line's last carriage-return segment; blank and bar-only lines dropped."
    lines = []
    for line in text.split('\n'):
        seg = next((s for s in reversed(line.split('\r')) if s.strip()), '')
        if seg.strip() and set(seg.strip()) != {'█'}: lines.append(seg.rstrip())
    return '\n'.join(lines) + ('\n' if lines else '')

def tidy(nb):
    "`nb` with its stream outputs as a terminal shows them, and the empty ones dropped."
    for c in nb.cells:
        if c.cell_type != 'code': continue
        outs = []
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream':
                o['text'] = terminal_text(''.join(o['text']) if isinstance(o['text'], list) else o['text'])
                if not o['text']: continue
            outs.append(o)
        c['outputs'] = outs
    return nb

def skipped(cell) -> bool:
    "What `nbdev_test` does not run besides the flags: markdown, `#| eval: false` cells and the closing `nbdev_export()` call."
    if cell.cell_type != 'code': return True
    return 'nbdev_export(' in cell.source or any(re.match(r'#\|\s*eval:\s*false', l.strip(), re.I) for l in cell.source.splitlines())

def execute(path:Path):
    "Run every cell of the notebook at `path` in its folder and save it with its outputs."
    path = Path(path).resolve()
    nb, t0 = read_nb(path), time.time()
    for c in nb.cells:   # execnb keeps a cell's old outputs when it now prints nothing: start from none
        if c.cell_type == 'code': c.outputs = []
    with working_directory(path.parent):
        sh = CaptureShell(path=path.parent)
        sh.run(f"import matplotlib as mpl; mpl.rcParams['figure.dpi'] = {DPI}")   # small pictures: well under 1 MB a notebook
        sh.run_all(nb, exc_stop=True, preproc=skipped)
    write_nb(tidy(nb), path)
    print(f'{path.name}: {time.time() - t0:.0f} s, {path.stat().st_size / 1e3:.0f} kB', flush=True)

if __name__ == '__main__':
    if len(sys.argv) == 2: execute(sys.argv[1])
    else:   # one process per notebook, as nbdev_test runs them: nothing one notebook does to a library's state reaches the next
        for p in sys.argv[1:]: subprocess.run([sys.executable, __file__, p], check=True)
