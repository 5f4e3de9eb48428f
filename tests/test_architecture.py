"""The package's shape: one concern per module, layers that import only downwards, no private name shared between
modules, no module too long to read in one sitting. Read from the source with `ast`, nothing is imported."""
import ast
from pathlib import Path
import pytest

PKG = Path(__file__).resolve().parents[1]/'knowledge_adaptation'
MODULES = {p.stem: p for p in PKG.glob('*.py') if p.stem not in ('__init__', '_modidx')}
# What each layer may build on. The lower layers know nothing of training, the method or the pipeline.
LOWER = {'files', 'cli', 'gram', 'losses', 'models', 'features', 'metrics', 'transforms', 'datasets', 'scenes', 'digits', 'shapes', 'folder', 'data', 'testing'}
UPPER = {'training', 'autoencoder', 'adapter', 'affinity', 'distill', 'report', 'complexity', 'presets', 'pipeline', 'runs', 'predict', 'ablations'}
MAX_LINES = 310

def _imports(path:Path) -> list:
    "`(module, names)` for every import of a sibling module in `path` (relative or `knowledge_adaptation.x`)."
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            mod = node.module
            if node.level == 1: out.append((mod, [a.name for a in node.names]))
            elif mod.startswith('knowledge_adaptation.'): out.append((mod.split('.', 1)[1], [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            out += [(a.name.split('.', 1)[1], []) for a in node.names if a.name.startswith('knowledge_adaptation.')]
    return out

GRAPH = {m: {i for i, _ in _imports(p)} for m, p in MODULES.items()}

def test_every_module_is_in_a_layer():
    assert set(MODULES) == LOWER | UPPER, set(MODULES) ^ (LOWER | UPPER)

def test_lower_layers_import_nothing_above_them():
    bad = {m: sorted(GRAPH[m] & UPPER) for m in LOWER if GRAPH[m] & UPPER}
    assert not bad, f'lower modules importing training, method or pipeline modules: {bad}'

def test_import_graph_has_no_cycle():
    state = {}
    def visit(m, path):
        if state.get(m) == 'done': return
        assert state.get(m) != 'open', f'import cycle: {" -> ".join(path + [m])}'
        state[m] = 'open'
        for n in sorted(GRAPH[m]): visit(n, path + [m])
        state[m] = 'done'
    for m in sorted(GRAPH): visit(m, [])

def test_the_method_does_not_import_the_pipeline():
    assert not GRAPH['distill'] & {'pipeline', 'ablations', 'report'}, GRAPH['distill']
    assert 'distill' not in GRAPH['training'] and 'pipeline' not in GRAPH['training']

def test_no_private_name_crosses_a_module():
    shared = {(m, i, n) for m, p in MODULES.items() for i, names in _imports(p) for n in names if n.startswith('_')}
    assert not shared, f'private names imported from another module: {sorted(shared)}'

@pytest.mark.parametrize('name', sorted(MODULES))
def test_module_is_short(name):
    n = len(MODULES[name].read_text().splitlines())
    assert n <= MAX_LINES, f'{name}.py has {n} lines (at most {MAX_LINES}): split it by concern'

def test_no_hook_on_the_networks():
    "Features are returned (`forward_with_feature`), never captured by hooks, but in one named place: `features.HookedFeature`, for networks fx cannot trace."
    users = [m for m, p in MODULES.items() if 'hook_output' in p.read_text() or 'register_forward_hook' in p.read_text()]
    assert users == ['features'], users
    src = MODULES['features'].read_text()
    hooked = src[src.index('class HookedFeature'):]
    hooked = hooked[:hooked.index('\nclass ') if '\nclass ' in hooked else len(hooked)]
    assert src.count('register_forward_hook') == hooked.count('register_forward_hook') == 1
