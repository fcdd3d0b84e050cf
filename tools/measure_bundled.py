"""Measure every bundled model as users get it, and write the figures into its card.

    python tools/measure_bundled.py FER2013 [--split PublicTest|PrivateTest] [--models accurate,fast,...] [--assets DIR]

Each model is scored by `mask_matrix` (04_analysis): each mask type (and none) drawn on all faces of the split, then
`predict` on each image with its defaults (landmarks found on the masked image, the mask detector, the occluder where
`predict` draws it, the card's TTA). The card gets `metrics.matrix.<split>` (per column: accuracy, its standard error,
macro-F1, the share of faces the mask detector called masked and the share with grey drawn, whether the type was held
out of training), and on PrivateTest `metrics.PrivateTest` from the grey column. The first time a card is measured
this way, the figures it had (measured from the bare face's landmarks, a path no user takes) are kept once under
`metrics.bare_landmark_matrix`, for the model card's comparison, and the gaps measured from them are dropped. Each model's per-face predictions go to
runs/measured/<model>_<split>.csv.
"""
import sys, json
from pathlib import Path
from masked_emotions.core import atomic_path
from masked_emotions.models import BUNDLED_MODELS, read_card
from masked_emotions.analysis import matrix_predictions, matrix_scores, matrix_table, card_columns


def record(card_path: Path, split: str, columns: dict) -> dict:
    "Write `columns` into the card at `card_path` as its `split` matrix (the old bare-landmark matrix kept once); return the card."
    card = read_card(card_path)
    m = card.setdefault('metrics', {})
    if 'matrix' in m and 'bare_landmark_matrix' not in m and not m.get('served'):
        m['bare_landmark_matrix'] = m.pop('matrix')
        m.pop('gap_to_accurate', None)  # measured on the old path: the model card computes the gaps from the served columns
    m.setdefault('matrix', {})[split] = columns
    m['served'] = True  # every figure in `matrix` came through predict
    if split == 'PrivateTest' and 'grey' in columns: m['PrivateTest'] = dict(columns['grey'], mask='grey')
    with atomic_path(card_path) as p: p.write_text(json.dumps(card, indent=2))
    return card


def main(src: str, split: str, names: list, assets=None) -> None:
    cards = {n: (Path(assets) / BUNDLED_MODELS[n]().name if assets else BUNDLED_MODELS[n]()) for n in names}
    out = Path('runs/measured'); out.mkdir(parents=True, exist_ok=True)
    for name, card_path in cards.items():
        preds = matrix_predictions({name: card_path}, src, split)
        preds.to_csv(out / f'{name}_{split}.csv', index=False)
        scores = matrix_scores(preds, {name: card_path})
        record(card_path, split, card_columns(scores))
        print(matrix_table(scores).to_string(), flush=True)


if __name__ == '__main__':
    if len(sys.argv) < 2 or not Path(sys.argv[1]).exists(): sys.exit(__doc__)
    opt = lambda o, d=None: sys.argv[sys.argv.index(o) + 1] if o in sys.argv else d
    split = opt('--split', 'PrivateTest')
    if split not in ('PublicTest', 'PrivateTest'): sys.exit(f'measure_bundled.py: --split {split}: expected PublicTest or PrivateTest')
    names = opt('--models', ','.join(BUNDLED_MODELS)).split(',')
    bad = [n for n in names if n not in BUNDLED_MODELS]
    if bad: sys.exit(f"measure_bundled.py: --models {','.join(bad)}: not a bundled model ({', '.join(BUNDLED_MODELS)})")
    main(sys.argv[1], split, names, opt('--assets'))
