"""How much class information does each representation carry *at the student's grid*? Linear probes on frozen features.

    python bench/probe.py --out ka_output            # a finished `ka_reproduce` output folder (teacher, translator, students)

For each representation, a 1x1 convolution (a linear classifier per position) is trained with Adam on frozen features of
training batches (augmented crops), its logits upsampled bilinearly to the labels exactly as the student's are, and
scored by mIoU on the run's validation split:

- `teacher feature, pooled`: the teacher's distilled feature averaged over each cell of the student's grid: what the
  teacher knows that a stride-16 output could show;
- `translator code`: the encoder's code E(phi_t), the target of L_adapt;
- `baseline student`, `KA student`: each student's own phi_s (seed 0).

A probe above the baseline student's own mIoU is knowledge the student could gain; the gap between the teacher's own
mIoU and its pooled probe is knowledge no stride-16 student can show (thin and small structures).
Then it asks how much of the code (unit-normalised per position, as L_adapt compares it) is just the label of its cell:
the share of its variance the cells' majority labels explain, and the L_adapt an oracle would reach by outputting the
mean code of the cell's class, next to the L_adapt the KA student reached.
This is a diagnostic, not a speed benchmark: it lives here because it needs a trained run folder."""
import argparse, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import torch, torch.nn.functional as F
from knowledge_adaptation.pipeline import preset_dls
from knowledge_adaptation.runs import read_config, load_teacher, load_translator
from knowledge_adaptation.distill import load_student
from knowledge_adaptation.metrics import miou, cell_fractions
from knowledge_adaptation.losses import adapt_loss

def collect(dl, n_batches, reps):
    "The feature of each `name -> function of the images` in `reps` on `n_batches` batches of `dl`, and the labels."
    feats, ys = {k: [] for k in reps}, []
    with torch.no_grad():
        for _, (x, y) in zip(range(n_batches), dl):
            for name, fn in reps.items(): feats[name].append(fn(x))
            ys.append(y)
    return {k: torch.cat(v) for k, v in feats.items()}, torch.cat(ys)

def probe(xtr, ytr, xva, yva, n_classes, iters=300, bs=32, lr=1e-2, seed=0):
    "mIoU and per-class IoU on the validation features of a 1x1-conv classifier trained on the training features."
    torch.manual_seed(seed)
    mu, sd = xtr.mean((0, 2, 3), keepdim=True), xtr.std((0, 2, 3), keepdim=True) + 1e-6
    clf = torch.nn.Conv2d(xtr.shape[1], n_classes, 1); opt = torch.optim.Adam(clf.parameters(), lr)
    up = lambda x, size: F.interpolate(clf((x - mu) / sd), size, mode='bilinear', align_corners=False)
    for _ in range(iters):
        i = torch.randint(0, len(ytr), (bs,))
        loss = F.cross_entropy(up(xtr[i], ytr.shape[-2:]), ytr[i], ignore_index=255)
        opt.zero_grad(); loss.backward(); opt.step()
    with torch.no_grad(): return miou(up(xva, yva.shape[-2:]).argmax(1), yva, n_classes)

def cell_labels(y, size, n_classes):
    "The majority label of each cell when `y` (B, H, W) is pooled to `size`; 255 where void is the majority."
    frac = cell_fractions(y, size, n_classes)
    lab = frac.argmax(1)
    return torch.where(frac.sum(1) > 0.5, lab, torch.full_like(lab, 255))

def code_vs_labels(z, y, n_classes):
    "How much of the unit-normalised code is the cell's label: share of variance explained, and L_adapt of a class-mean oracle."
    u = F.normalize(z, dim=1).permute(0, 2, 3, 1).reshape(-1, z.shape[1])
    lab = cell_labels(y, z.shape[-2:], n_classes).reshape(-1)
    u, lab = u[lab != 255], lab[lab != 255]
    means = torch.stack([u[lab == c].mean(0) if (lab == c).any() else torch.zeros(u.shape[1]) for c in range(n_classes)])
    r2 = 1 - (u - means[lab]).pow(2).sum() / (u - u.mean(0)).pow(2).sum()
    oracle = adapt_loss(u[..., None, None], means[lab][..., None, None], channel_mean=True)   # each cell as a 1x1 map
    return float(r2), float(oracle), len(u)

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--out', default='ka_output', help='output folder of a finished ka_reproduce run')
    p.add_argument('--train_batches', type=int, default=25)
    p.add_argument('--iters', type=int, default=300)
    a = p.parse_args()
    out = Path(a.out)
    cfg, data = read_config(out)
    dls = preset_dls(cfg, data and data['root'])
    teacher, _ = load_teacher(cfg, out/'teacher', dls.n_classes)     # finished stages: loaded, never trained
    tr, _ = load_translator(cfg, teacher, out/'translator')
    base, ka = load_student(out/'baseline_student.pth'), load_student(out/'ka_student.pth')
    phi_t = lambda x: teacher.forward_with_feature(x)[1]
    s = base.output_stride // teacher.feature_stride                   # teacher feature averaged over student cells
    reps = {'teacher feature, pooled to the student grid': lambda x: F.avg_pool2d(phi_t(x), s, ceil_mode=True),
            'translator code E(phi_t)': lambda x: tr.encode(phi_t(x)),
            'baseline student phi_s': lambda x: base.forward_with_feature(x)[1],
            'KA student phi_s': lambda x: ka.forward_with_feature(x)[1]}
    n_valid_batches = -(-len(dls.valid.dataset) // dls.valid.bs)
    xtr, ytr = collect(dls.train, a.train_batches, reps)
    xva, yva = collect(dls.valid, n_valid_batches, reps)
    res = json.loads((out/'results.json').read_text()) if (out/'results.json').exists() else {}
    print(f'# linear probes (1x1 conv, {a.iters} Adam steps on {len(ytr)} training crops), validation mIoU on {len(yva)} images of {out}')
    print('| representation | probe mIoU (%) |\n|---|---|')
    for name in reps:
        m, _ = probe(xtr[name], ytr, xva[name], yva, dls.n_classes, a.iters)
        print(f'| {name} | {100 * m:.1f} |')
    for k in ('teacher', 'baseline', 'ka'):
        if k in res: print(f"| ({k} network's own mIoU) | {100 * res[k]['miou']:.1f} |")
    # what the code holds beyond the labels: if the cell's label explains most of it, imitating it teaches little else
    code_name = list(reps)[1]
    r2, oracle, n = code_vs_labels(xtr[code_name], ytr, dls.n_classes)
    ka_hist = res.get('history', {}).get('ka_seed0')
    ka_adapt = ka_hist['values'][-1][ka_hist['names'].index('adapt')] if ka_hist and 'adapt' in ka_hist['names'] else float('nan')
    print(f'\n# the code at the student grid vs the cells\' majority labels ({n} labelled training cells)')
    print(f'- share of the unit-normalised code\'s variance explained by the cell label: {100 * r2:.1f}%')
    print(f'- L_adapt (channel mean) of an oracle that outputs its class\'s mean code: {oracle:.4f}')
    print(f'- L_adapt (channel mean) the KA student reached (seed 0, last training epoch): {ka_adapt:.4f}')

if __name__ == '__main__': main()
