"""Write README.md from nbs/index.ipynb, as `nbdev_readme` would (it needs Quarto, which cannot be installed here).

Markdown cells are copied (image links made relative to the repository root), code cells become ```python blocks followed by their text output; cells marked
`#| hide` are left out and `#| ` directives are dropped. `--check` fails if README.md is not what index.ipynb makes.
"""
import json, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent


def cell_md(cell) -> str:
    src = ''.join(cell['source'])
    if cell['cell_type'] == 'markdown': return src.replace('](images/', '](nbs/images/')  # paths relative to nbs/ -> to the root
    lines = src.splitlines()
    if any(l.strip().replace(' ', '') in ('#|hide', '#|include:false') for l in lines): return ''
    code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
    outs = [''.join(o.get('text', '')) or ''.join(o.get('data', {}).get('text/plain', '')) for o in cell.get('outputs', [])]
    out = '\n'.join(o.rstrip() for o in outs if o.strip())
    return f'```python\n{code}\n```' + (f'\n\n```\n{out}\n```' if out else '')


def readme() -> str:
    nb = json.loads((root / 'nbs' / 'index.ipynb').read_text())
    parts = [cell_md(c) for c in nb['cells']]
    return '\n\n'.join(p for p in parts if p) + '\n'


if __name__ == '__main__':
    text, dest = readme(), root / 'README.md'
    if '--check' in sys.argv:
        if dest.read_text() != text: sys.exit('README.md is out of date with nbs/index.ipynb: run python .ci/readme.py')
    else: dest.write_text(text)
