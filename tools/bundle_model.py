"""Make a trained run the default model that ships in the package.

    python tools/bundle_model.py RUN_DIR|CARD FER2013 [--force]
    python tools/bundle_model.py RUN_DIR|CARD UNMASKED_FER2013 --matrix [--force]
    python tools/bundle_model.py RUN_DIR|CARD UNMASKED_FER2013 --matrix --fast [--force]

--assets DIR writes into DIR instead of the package's masked_emotions/assets (the tests use it).

RUN_DIR is a training run (masked_emotions_train) or an average of runs (masked_emotions_average, uniform or greedy).
Copies RUN_DIR's best weights and card (or those of CARD, e.g. RUN_DIR/final.json) to
masked_emotions/assets/default_model.{safetensors,json}, after evaluating them on all of PublicTest and
PrivateTest (masked, as in training) and adding to the card each split's accuracy, macro-F1 and per-class
recall, with the card's test-time augmentation. Writes the PrivateTest
predictions to RUN_DIR/bundled_predictions.csv: `masked_emotions_analyze RUN_DIR/bundled_predictions.csv` draws
the README's figures from them. Refuses a model that does not beat the bundled one on PublicTest, the validation
split (accuracy, then macro-F1 on a tie), unless --force: weights go into git, so only improvements are committed,
and the choice is never made on PrivateTest, the test split. A greedy soup or ensemble whose card already records a
lower PublicTest accuracy (measured the same way when it was chosen) is refused before the minutes of evaluation.
So are weights over 50 MB, the package's budget for its model.

With --matrix, FER2013 is unmasked and the model is scored by `mask_matrix` (04_analysis) on all of PublicTest and
PrivateTest as users get it: each mask type (and none) drawn on the face image, then `predict` on that image with its
defaults (landmarks found on the masked image, the mask detector, grey drawn where `predict` draws it). The card gets
`metrics.matrix` (accuracy, its standard error, macro-F1, the masked and drawn rates per column),
`metrics.PublicTest`/`PrivateTest` from the grey column, and `mask.draw_over_masks` as `predict` served it (grey over a
worn mask when the model learnt from masks with grey drawn over them). With --fast the model becomes the fast bundled
model (fast_model.*, `predict(model='fast')`) instead, compared with the fast model bundled before if there is one,
and the card records its gap to the accurate model on every column (measured again, in the fast model's card, whenever
a new accurate model is bundled with --matrix). It then must beat the bundled model on its worst PublicTest column
(bare faces included), if that card has a matrix (a card without one cannot be compared: --force, and say why).
"""
import json, re, shutil, sys
from pathlib import Path
import pandas as pd
from masked_emotions.core import ASSETS, atomic_path
from masked_emotions.models import TTA_ZOOMS, default_model_card, fast_model_card, find_model_card, load_model, read_card, draws_over_masks
from masked_emotions.data import emotion_dataloaders
from masked_emotions.learner import privatetest_predictions
from masked_emotions.analysis import emotion_metrics


MAX_BYTES = 50_000_000  # the package's size budget for its model (issue 4)


def split_metrics(preds: pd.DataFrame) -> dict:
    "Accuracy, macro-F1 and per-class recall of `preds`."
    m = emotion_metrics(preds)
    return dict(images=m['n'], accuracy=round(m['accuracy'], 4), macro_f1=round(m['macro_f1'], 4),
                recall={e: round(v['recall'], 4) for e, v in m['per_class'].items()})


def commands(run: Path) -> list:
    """The commands that made `run`: those that made the models it came from (--weights and --teacher, or the models
    it averages), then its own. A model without its run's settings.json (a copy of a bundled model) gives the
    commands of its card's `reproduce`."""
    settings = json.loads((run / 'settings.json').read_text())
    sources = settings.get('models', []) or [settings[k] for k in ('weights', 'teacher') if settings.get(k)]
    chain = []
    for w in map(Path, sources):
        parent = w if w.is_dir() else w.parent  # a model_dir, or a card / safetensors in one
        if (parent / 'settings.json').exists(): made = commands(parent)
        else:
            card = read_card(find_model_card(w))
            made = [c for c in card.get('reproduce', '').split(' && ') if c and not c.startswith('masked_emotions_mask ')]
        chain += [c for c in made if c not in chain]
    return chain + [settings['command']]


def reproduce(run: Path, data: str) -> str:
    """Portable commands that remake `run` from ../shared's FER2013: masked data in work/masked (masked first, if a
    command reads it), runs under runs/."""
    made = portable(' && '.join(commands(run)), run, data)
    return ('masked_emotions_mask ../shared/data/fer2013 work/masked && ' if 'work/masked' in made else '') + made


def fast_reproduce(run: Path, data: str, accurate: str, command: str) -> str:
    """A fast model's commands: the accurate model's `accurate` reproduce (its teacher), then those that made the
    models `run` came from and are not among them (a fast model it started from), then `command`, its own. Bundling
    commands in those (an accurate model bundled then, since replaced) are left out: after the accurate model's own, the
    tool would refuse them as no better, and the chain would stop there."""
    have = accurate.split(' && ')
    made = [c for c in portable(' && '.join(commands(run)[:-1]), run, data).split(' && ')
            if c and c not in have and not c.startswith('python tools/bundle_model.py ')]
    return ' && '.join([*have, *dict.fromkeys(made), command])


def portable(text: str, run: Path, data: str) -> str:
    "`text` with this machine's masked data and runs folders written as work/masked and runs/."
    return text.replace(str(Path(data).resolve()), 'work/masked').replace(str(run.resolve().parent) + '/', 'runs/')


def run_of_bundled(path: str) -> str | None:
    """The run a bundled model's card came from, as runs/NAME/best.json (its card's `weights` names the run), when
    `path` is one of the package's bundled cards or weights; else None."""
    p = Path(path).resolve()
    if p.parent != ASSETS.resolve(): return None
    m = re.search(r'\(runs/([^)]+)\)', read_card(p.with_suffix('.json')).get('weights', ''))
    return f'runs/{m[1]}/best.json' if m else None


def portable_command(command: str, data: str) -> str:
    """A fast model's training `command` as the reproduce commands write it: a bundled model it started from or learnt
    from (`--weights`/`--teacher masked_emotions/assets/...`) as the run that made it, other runs under runs/, the data
    as ../shared's."""
    command = re.sub(r'(--(?:weights|teacher) )(\S+)', lambda m: m[1] + (run_of_bundled(m[2]) or m[2]), command)
    return re.sub(r'(--(?:weights|teacher|model_dir) )(?!runs/|/)', r'\1runs/', command).replace(str(Path(data).resolve()), '../shared/data/fer2013')


def matrix_metrics(card_path: Path, data: str) -> dict:
    "split -> mask -> accuracy, its standard error, macro-F1, masked and drawn rates, and whether the type was held out of training; through `predict`."
    from masked_emotions.analysis import mask_matrix, card_columns
    out = {}
    for split in ('PublicTest', 'PrivateTest'):
        mx = mask_matrix({'m': card_path}, data, split=split)
        out[split] = card_columns(mx)
        print(split, json.dumps(out[split]), flush=True)
    return out


def worst(matrix: dict) -> float:
    "The lowest accuracy over the columns of a split's matrix: every face a user may have, bare or masked, counts."
    return min(v['accuracy'] for v in matrix.values())


def gap_to_accurate(matrix: dict, accurate: dict) -> dict:
    "{split: {mask: points}}: how far each column of `matrix` is below the same column of `accurate` (both cards' `metrics.matrix`)."
    return {s: {k: round(100 * (accurate[s][k]['accuracy'] - v['accuracy']), 2) for k, v in m.items() if k in accurate.get(s, {})} for s, m in matrix.items()}


def refresh_fast_gap() -> None:
    "The bundled fast model's `gap_to_accurate`, measured again against the bundled accurate model (after it changed)."
    if not fast_model_card().exists(): return
    fast, accurate = read_card(fast_model_card()), read_card(default_model_card())
    if 'matrix' not in fast.get('metrics', {}) or 'matrix' not in accurate.get('metrics', {}): return
    fast['metrics']['gap_to_accurate'] = gap_to_accurate(fast['metrics']['matrix'], accurate['metrics']['matrix'])
    with atomic_path(fast_model_card()) as p: p.write_text(json.dumps(fast, indent=2))


def bundle_matrix(card_path: Path, data: str, force: bool, fast: bool = False) -> None:
    "Score the model under every mask, refuse it unless it beats the bundled model's worst PublicTest column, and bundle it."
    run, card = card_path.parent, read_card(card_path)
    size = card_path.with_suffix('.safetensors').stat().st_size
    if size > MAX_BYTES and not force: sys.exit(f'{run}: {size / 1e6:.1f} MB of weights, over the {MAX_BYTES / 1e6:.0f} MB a bundled model may take; not bundled')
    dest = fast_model_card() if fast else default_model_card()
    old = read_card(dest).get('metrics', {}).get('matrix') if dest.exists() else None
    if old is None and dest.exists() and not force: sys.exit('the bundled model has no evaluation matrix to compare with: --force, and say why')
    card['metrics']['matrix'] = matrix_metrics(card_path, data)  # through predict, which serves the card as `draws_over_masks` says
    card['mask']['draw_over_masks'] = draws_over_masks(card)  # said in the card, so that every tool that rebuilds it keeps it
    new = worst(card['metrics']['matrix']['PublicTest'])
    if old is not None and new <= worst(old['PublicTest']) and not force:
        sys.exit(f'{run}: worst PublicTest mask column {new} does not beat the bundled model {worst(old["PublicTest"])}; not bundled')
    for split in ('PublicTest', 'PrivateTest'): card['metrics'][split] = dict(card['metrics']['matrix'][split]['grey'], mask='grey')
    if fast:  # how far each column is from the accurate model's (points of accuracy)
        card['metrics']['gap_to_accurate'] = gap_to_accurate(card['metrics']['matrix'], read_card(default_model_card())['metrics']['matrix'])
        card['command'] = portable_command(card['command'], data)
        card['reproduce'] = fast_reproduce(run, data, read_card(default_model_card())['reproduce'], card['command'])
    else: card['reproduce'] = reproduce(run, data) + f' && python tools/bundle_model.py runs/{run.name} ../shared/data/fer2013 --matrix'
    card['weights'] = f'{card_path.stem}.safetensors of the last run (runs/{run.name})'
    shutil.copy(card_path.with_suffix('.safetensors'), dest.with_suffix('.safetensors'))
    with atomic_path(dest) as p: p.write_text(json.dumps(card, indent=2))
    if not fast: refresh_fast_gap()  # the fast model's card measures itself against this one
    print(json.dumps(card['metrics'], indent=1))


if __name__ == '__main__':
    if '--assets' in sys.argv:  # bundle into another folder: the package's models stay as they are
        i = sys.argv.index('--assets'); ASSETS = Path(sys.argv[i + 1]); del sys.argv[i:i + 2]
        ASSETS.mkdir(parents=True, exist_ok=True)
        default_model_card = lambda: ASSETS / 'default_model.json'; fast_model_card = lambda: ASSETS / 'fast_model.json'
    args, force = [a for a in sys.argv[1:] if not a.startswith('--')], '--force' in sys.argv
    if '--matrix' in sys.argv and len(args) == 2: sys.exit(bundle_matrix(find_model_card(args[0]), args[1], force, '--fast' in sys.argv))
    if len(args) < 2: sys.exit(__doc__)
    data = args[1]
    card_path = find_model_card(args[0]); run = card_path.parent
    net, card = load_model(card_path)
    if card.get('tta') and 'tta_zooms' not in card: card['tta_zooms'] = list(TTA_ZOOMS)  # a card written before tta_zooms existed
    size = card_path.with_suffix('.safetensors').stat().st_size
    if size > MAX_BYTES and not force: sys.exit(f'{run}: {size / 1e6:.1f} MB of weights, over the {MAX_BYTES / 1e6:.0f} MB a bundled model may take; not bundled')
    score = lambda m: (m.get('PublicTest', {}).get('accuracy', 0), m.get('PublicTest', {}).get('macro_f1', 0))
    old = score(read_card(default_model_card())['metrics']) if default_model_card().exists() else (0, 0)
    chosen = card.get('greedy', {}).get('accuracy')  # a greedy soup's PublicTest accuracy, measured as below when it was chosen
    if chosen is not None and chosen < old[0] and not force:  # refused without the minutes of evaluation
        sys.exit(f'{run}: PublicTest accuracy {chosen} (its greedy record) does not beat the bundled model {old}; not bundled')
    dls = emotion_dataloaders(data, aug=False)
    preds = {split: privatetest_predictions(net, card, dls, split) for split in ('PublicTest', 'PrivateTest')}
    for split, p in preds.items(): card['metrics'][split] = split_metrics(p)
    with atomic_path(run / 'bundled_predictions.csv') as p: preds['PrivateTest'].to_csv(p, index=False)  # for masked_emotions_analyze
    new = score(card['metrics'])
    if new <= old and not force: sys.exit(f'{run}: PublicTest accuracy, macro-F1 {new} do not beat the bundled model {old}; not bundled')
    card['reproduce'] = reproduce(run, data)
    if card.get('command'): card['command'] = portable(card['command'], run, data)
    where = lambda m: portable(str(Path(m).resolve()), run, data)  # a model's path, as the reproduce commands write it
    if 'averaged_from' in card: card['averaged_from'] = [where(m) for m in card['averaged_from']]
    for t in [*card.get('greedy', {}).get('tried', []), *card.get('greedy', {}).get('rounds', [])]: t['model'] = where(t['model'])
    card['weights'] = f'{card_path.stem}.safetensors of the last run (runs/{run.name})'
    shutil.copy(card_path.with_suffix('.safetensors'), ASSETS / 'default_model.safetensors')
    with atomic_path(ASSETS / 'default_model.json') as p: p.write_text(json.dumps(card, indent=2))
    print(json.dumps(card['metrics'], indent=1))
