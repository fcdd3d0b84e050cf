"""Score candidate ensembles of trained networks on the columns `predict` serves, cheaply: each network's probabilities
are computed once and cached, and any weighted ensemble of them is then arithmetic.

    python tools/research/ensemble_candidates.py FER2013 CACHE_DIR CARD... [--ensembles 'A,B,C:2' ...] [--splits PublicTest,PrivateTest]

Each CARD (a model_dir, card or safetensors file, see `find_model_card`) is run on every face of each split under
each mask `predict` serves a model whose card says `draw_over_masks` (grey, and each realistic type with grey drawn
over it; seeded, the same faces `masked_emotions_analyze --matrix` scores), with four test-time views (zooms 1 and 1.05 and their mirror
images, as the accurate model runs), its own card's normalisation; the probabilities go to CACHE_DIR/NAME.npz (NAME:
the card's path, '/' as '_'), which a rerun reuses while the card and its weights are unchanged and the file holds every
column asked for. Each --ensembles entry names cached networks, comma-separated,
each with an optional :weight (default 1), and is scored as the weighted mean of their probabilities, which is what
`masked_emotions_average --ensemble --member_weights` makes of them (a member normalised otherwise is renormalised,
to within 1e-4). Prints one line per network and per ensemble: accuracy on each column of each split, the worst
and the mean. Choose on PublicTest, report PrivateTest.
"""
import os, sys
from pathlib import Path
import numpy as np

VIEWS = dict(tta=True, tta_zooms=[1, 1.05])  # the views each network is scored with


def cache_name(card) -> str: return str(card).strip('./').replace('/', '_').removesuffix('.json')


def split_columns(src, splits) -> dict:
    "{split: (labels, {mask: faces})}: every face of each split under grey and each mask type with grey drawn over it."
    from masked_emotions.analysis import split_faces, matrix_faces
    from masked_emotions.masking import fer_landmarks, MASK_TYPES
    out = {}
    for s in splits:
        items, faces = split_faces(src, s); points = fer_landmarks(faces)
        out[s] = (items.label.values, {m: matrix_faces(faces, points, m, 0, items['index']) for m in ['grey', *(f'{t}+grey' for t in MASK_TYPES)]})
    return out


def network_digest(card) -> str:
    "sha256 of the card and the files beside it that share its name (its weights): what a cache entry was computed from."
    import hashlib
    card = Path(card); h = hashlib.sha256()
    for f in sorted(p for p in card.parent.glob(f'{card.stem}.*') if p.is_file() and p.suffix != '.npz'):
        h.update(f.name.encode()); h.update(f.read_bytes())
    return h.hexdigest()


def network_probs(card, columns: dict, cache: Path) -> dict:
    "{'split/mask': N x 7 probabilities} of the network at `card`, from `cache` (if made from the same weights and holding every column) or computed and cached (atomically)."
    from masked_emotions.models import load_model, face_probs
    dest, digest = cache / f'{cache_name(card)}.npz', network_digest(card)
    keys = [f'{s}/{m}' for s, (_, xs) in columns.items() for m in xs]
    if dest.exists():
        cached = dict(np.load(dest))
        if str(cached.pop('digest', '')) == digest and all(k in cached for k in keys): return cached
    net, c = load_model(card); c = dict(c, **VIEWS)
    probs = {f'{s}/{m}': face_probs(net, x, c, True, backend=None) for s, (_, xs) in columns.items() for m, x in xs.items()}
    tmp = dest.with_name(dest.name + '.part.npz'); np.savez(tmp, digest=np.array(digest), **probs); os.replace(tmp, dest)
    return probs


def ensemble_accuracy(spec: str, probs: dict, columns: dict, classes) -> dict:
    "{split: {mask: accuracy %}} of the ensemble `spec` ('name[:weight],...') of cached `probs`."
    parts = [(p.rsplit(':', 1)[0], float(p.rsplit(':', 1)[1])) if ':' in p else (p, 1.0) for p in spec.split(',')]
    missing = [n for n, _ in parts if n not in probs]
    if missing: raise SystemExit(f'{spec}: {", ".join(missing)} not among the networks given ({", ".join(probs)})')
    return {s: {m: 100 * float((np.asarray(classes)[sum(w * probs[n][f'{s}/{m}'] for n, w in parts).argmax(1)] == y).mean()) for m in xs}
            for s, (y, xs) in columns.items()}


def line(name: str, acc: dict) -> str:
    return f'{name}: ' + ' | '.join(f'{s} ' + ' '.join(f'{m} {v:.2f}' for m, v in a.items()) + f' worst {min(a.values()):.2f} mean {np.mean(list(a.values())):.2f}'
                                    for s, a in acc.items())


def main(argv):
    if len(argv) < 3 or not Path(argv[0]).exists(): sys.exit(__doc__)
    from masked_emotions.models import find_model_card, read_card
    opts = [i for i, a in enumerate(argv) if a.startswith('--')]
    cards = argv[2:opts[0] if opts else None]
    ensembles = argv[argv.index('--ensembles') + 1:] if '--ensembles' in argv else []
    ensembles = ensembles[:next((i for i, a in enumerate(ensembles) if a.startswith('--')), None)]
    splits = argv[argv.index('--splits') + 1].split(',') if '--splits' in argv else ['PublicTest', 'PrivateTest']
    cards = [find_model_card(c) for c in cards]  # a missing one fails here, before minutes of masking
    cache = Path(argv[1]); cache.mkdir(parents=True, exist_ok=True)
    columns = split_columns(argv[0], splits)
    classes = read_card(cards[0])['classes']
    probs = {}
    for c in cards:
        name = cache_name(c); probs[name] = network_probs(c, columns, cache)
        print(line(name, ensemble_accuracy(name, probs, columns, classes)), flush=True)
    for spec in ensembles: print(line(spec, ensemble_accuracy(spec, probs, columns, classes)), flush=True)


if __name__ == '__main__':
    main(sys.argv[1:])
