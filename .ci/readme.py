"""Write README.md from nbs/index.ipynb, or check that they agree (`--check`).

`nbdev_readme` needs Quarto, which cannot be installed on every machine this project runs on, so the README is rendered
with nbconvert's markdown exporter instead: cells flagged `#| hide` are dropped, `#|` directive lines are removed, code
cells keep their text outputs, and cells flagged `#| echo: false` show their outputs only (as on the docs site).
Relative links and images, written for the notebook in `nbs/`, get the `nbs/` prefix that the README at the
repository's root needs."""
import re, sys
from pathlib import Path
import nbformat
from nbconvert import MarkdownExporter
from nbconvert.preprocessors import Preprocessor

ROOT = Path(__file__).resolve().parents[1]
_directive = re.compile(r'^\s*#\s*\|.*$', re.M)
_relative_link = re.compile(r'\]\((?!https?://|#|/|nbs/)([^)\s]+)\)')   # a markdown link or image relative to nbs/

class DirectivePreprocessor(Preprocessor):
    "Drop `#| hide` cells and strip nbdev directive lines (`#| ...`) from the rest."
    def preprocess(self, nb, resources):
        keep = []
        for c in nb.cells:
            if c.cell_type == 'code' and re.search(r'^\s*#\s*\|\s*hide\b', c.source, re.M): continue
            if c.cell_type == 'code' and re.search(r'^\s*#\s*\|\s*echo:\s*false\b', c.source, re.M):
                c.metadata.setdefault('transient', {})['remove_source'] = True
            if c.cell_type == 'code': c.source = _directive.sub('', c.source).strip('\n')
            keep.append(c)
        nb.cells = keep
        return nb, resources

def render(nb_path=ROOT/'nbs'/'index.ipynb') -> str:
    "The README text for `nb_path`."
    nb = nbformat.read(str(nb_path), as_version=4)
    nb.metadata.setdefault('language_info', {'name': 'python'})   # fences the code cells as python (nbdev_clean strips it)
    exp = MarkdownExporter(exclude_input_prompt=True, exclude_output_prompt=True)
    exp.register_preprocessor(DirectivePreprocessor, enabled=True)
    body, _ = exp.from_notebook_node(nb)
    body = re.sub(r'\n{3,}', '\n\n', body).strip() + '\n'
    body = _relative_link.sub(r'](nbs/\1)', body)
    return '<!-- Generated from nbs/index.ipynb by `python .ci/readme.py`: edit the notebook, not this file. -->\n\n' + body

def main(argv=sys.argv[1:]):
    text, readme = render(), ROOT/'README.md'
    if '--check' in argv:
        if not readme.exists() or readme.read_text() != text:
            sys.exit('README.md is out of date with nbs/index.ipynb: run `python .ci/readme.py`')
        print('README.md agrees with nbs/index.ipynb')
    else: readme.write_text(text); print(f'wrote {readme}')

if __name__ == '__main__': main()
