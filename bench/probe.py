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
from fastai.callback.hook import hook_output
from knowledge_adaptation.distill import Preset, preset_dls, train_teacher, train_translator, load_student
from knowledge_adaptation.metrics import miou
from knowledge_adaptation.losses import adapt_loss

def collect(dl, n_batches, nets):
    "Features of each `(name, net, layer, transform)` on `n_batches` batches of `dl`, and the labels."
    feats, ys = {k: [] for k, *_ in nets}, []
    with torch.no_grad():
        for _, (x, y) in zip(range(n_batches), dl):
            for name, net, layer, tfm in nets:
                with hook_output(layer) as h: net(x)
                feats[name].append(tfm(h.stored))
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

def cell_fractions(y, size, n_classes):
    "Share of each class among the pixels (void included) of each cell when `y` (B, H, W) is pooled to `size`: (B, n_classes, *size)."
    valid = y != 255
    onehot = F.one_hot(torch.where(valid, y, 0), n_classes).permute(0, 3, 1, 2).float() * valid[:, None]
    return F.adaptive_avg_pool2d(onehot, size)

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
    cfg = json.loads((out/'config.json').read_text()); cfg.pop('seeds', None); cfg.pop('root', None)
    cfg = Preset(**cfg)
    dls = preset_dls(cfg)
    quiet = lambda *_: None
    teacher, _ = train_teacher(cfg, dls, out/'teacher', quiet)        # finished stages: loaded, not trained
    tr, _ = train_translator(cfg, dls, teacher, out/'translator', log=quiet)
    teacher.eval(); tr.eval()
    base, ka = load_student(out/'baseline_student.pth'), load_student(out/'ka_student.pth')
    grid = lambda f: f                                                  # student features are on the grid already
    class Code(torch.nn.Module):                                        # the teacher followed by the encoder
        def __init__(self): super().__init__(); self.t, self.e = teacher, tr.encoder
        def forward(self, x):
            with hook_output(teacher.feature_layer) as h: teacher(x)
            return self.e(h.stored)
    code = Code().eval()
    def pooled(f):                                                      # teacher feature averaged over student cells
        s = base.output_stride // teacher.feature_stride
        return F.avg_pool2d(f, s, ceil_mode=True)
    nets = [('teacher feature, pooled to the student grid', teacher, teacher.feature_layer, pooled),
            ('translator code E(phi_t)', code, code.e, grid),
            ('baseline student phi_s', base, base.feature_layer, grid),
            ('KA student phi_s', ka, ka.feature_layer, grid)]
    n_valid_batches = -(-len(dls.valid.dataset) // dls.valid.bs)
    xtr, ytr = collect(dls.train, a.train_batches, nets)
    xva, yva = collect(dls.valid, n_valid_batches, nets)
    res = json.loads((out/'results.json').read_text()) if (out/'results.json').exists() else {}
    print(f'# linear probes (1x1 conv, {a.iters} Adam steps on {len(ytr)} training crops), validation mIoU on {len(yva)} images of {out}')
    print('| representation | probe mIoU (%) |\n|---|---|')
    for name, *_ in nets:
        m, _ = probe(xtr[name], ytr, xva[name], yva, dls.n_classes, a.iters)
        print(f'| {name} | {100 * m:.1f} |')
    for k in ('teacher', 'baseline', 'ka'):
        if k in res: print(f"| ({k} network's own mIoU) | {100 * res[k]['miou']:.1f} |")
    # what the code holds beyond the labels: if the cell's label explains most of it, imitating it teaches little else
    code_name = nets[1][0]
    r2, oracle, n = code_vs_labels(xtr[code_name], ytr, dls.n_classes)
    ka_hist = res.get('history', {}).get('ka_seed0')
    ka_adapt = ka_hist['values'][-1][ka_hist['names'].index('adapt')] if ka_hist and 'adapt' in ka_hist['names'] else float('nan')
    print(f'\n# the code at the student grid vs the cells\' majority labels ({n} labelled training cells)')
    print(f'- share of the unit-normalised code\'s variance explained by the cell label: {100 * r2:.1f}%')
    print(f'- L_adapt (channel mean) of an oracle that outputs its class\'s mean code: {oracle:.4f}')
    print(f'- L_adapt (channel mean) the KA student reached (seed 0, last training epoch): {ka_adapt:.4f}')

if __name__ == '__main__': main()
