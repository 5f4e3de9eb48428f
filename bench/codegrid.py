"""Does the translator's code keep the teacher's class structure? Cosines between class-mean directions, per grid.

    python bench/codegrid.py --out ka_output --translators translator:8
    python bench/codegrid.py --out ka_ablation --translators translator_os16:16 translator_os8:8

L_adapt compares unit-normalised vectors position by position, so what the student is asked to learn is the *direction*
of the code at each cell. For the teacher's feature averaged over each cell of a grid, and for each translator's code
(`FOLDER:STRIDE`, the folder relative to `--out` or absolute, the stride of its code), this prints the cosine between
the mean unit vectors of the cells that are more than half one class (validation images of the run's data): near 1, the
classes point the same way and imitating the direction teaches little about them; the teacher's own feature is the
reference. A diagnostic for `10_findings`' 'The code's grid', not a speed benchmark: it needs a trained run folder."""
import argparse, sys
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch, torch.nn.functional as F
from knowledge_adaptation.pipeline import preset_dls
from knowledge_adaptation.runs import read_config, load_teacher, load_translator
from knowledge_adaptation.metrics import cell_fractions

def class_cosines(f, frac, min_share=.5):
    "Cosine between the class-mean unit vectors of `f` (N, C, h, w) over cells with more than `min_share` of one class."
    u = F.normalize(f, dim=1).permute(0, 2, 3, 1).reshape(-1, f.shape[1])
    fr = frac.permute(0, 2, 3, 1).reshape(-1, frac.shape[1])
    share, lab = fr.max(1)
    ok = share > min_share
    means = torch.stack([F.normalize(u[ok & (lab == c)].mean(0), dim=0) if (ok & (lab == c)).any() else torch.full((u.shape[1],), float('nan'))
                         for c in range(frac.shape[1])])
    return means @ means.T, [int((ok & (lab == c)).sum()) for c in range(frac.shape[1])]

def show(title, cos, counts, names, common):
    print(f'\n{title}\n| | ' + ' | '.join(names) + ' |\n|---|' + '---|' * len(names))
    for i, n in enumerate(names):
        print(f'| {n} (n={counts[i]}) | ' + ' | '.join('' if j >= i else ('-' if cos[i, j] != cos[i, j] else f'{cos[i, j]:.2f}') for j in range(len(names))) + ' |')
    pairs = [float(cos[i, j]) for i in common for j in common if j < i]
    print(f'mean over the {len(pairs)} pairs of {", ".join(names[i] for i in common)}: {sum(pairs) / len(pairs):.2f}')

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='ka_output', help='a finished ka_reproduce or ka_ablate output folder (its teacher and config)')
    p.add_argument('--translators', nargs='+', default=['translator:16'], help='FOLDER:STRIDE of each translator to read')
    a = p.parse_args()
    out = Path(a.out)
    cfg, data = read_config(out)
    dls = preset_dls(cfg, data and data['root'])
    teacher, _ = load_teacher(cfg, out/'teacher', dls.n_classes)     # a finished stage: loaded, never trained
    feats, ys = [], []
    with torch.no_grad():
        for x, y in dls.valid: feats.append(teacher.forward_with_feature(x)[1]); ys.append(y)
    phi, y = torch.cat(feats), torch.cat(ys)
    names = list(dls.class_names)
    print(f'# class-mean cosines on {len(y)} validation images of {out} ({cfg.dataset}, scene_seed {cfg.scene_seed})')
    tables = []
    for spec in a.translators:
        folder, stride = spec.rsplit(':', 1); stride = int(stride)
        folder = Path(folder) if Path(folder).is_absolute() else out/folder
        tr, st = load_translator(replace(cfg, latent_stride=None), teacher, folder, stride)   # the code at `stride`
        n_ep = st['n_epoch']
        with torch.no_grad(): z = tr.encode(phi)
        frac = cell_fractions(y, z.shape[-2:], len(names))
        err = st['values'][-1][st['names'].index('recon_rel_err')]
        tables += [(f'teacher feature averaged over the cells of stride {stride} ({tuple(z.shape[-2:])})',
                    *class_cosines(F.adaptive_avg_pool2d(phi, z.shape[-2:]), frac)),
                   (f'code of {folder} (stride {stride}, {n_ep} epochs, reconstruction relative error {err:.2f})', *class_cosines(z, frac))]
    # the mean over the same classes in every table: those with at least 100 cells at every grid
    common = [i for i in range(len(names)) if all(counts[i] >= 100 for *_, counts in tables)]
    for t in tables: show(*t, names, common)

if __name__ == '__main__': main()
