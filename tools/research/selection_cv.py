"""Cross-validate ensemble selection on the validation split: does a longer selection generalise, or only fit PublicTest?

    python tools/research/selection_cv.py FER2013 MODEL MODEL... [--splits N]

FER2013: as for masked_emotions_train (masked once, cached). MODEL: the candidates, as for masked_emotions_average.
Ensemble selection (`masked_emotions_average --greedy --ensemble`) fits its weights on PublicTest, so the PublicTest
accuracy it records is a training score: more rounds, or more distinct networks, always fit it at least as well.
This script splits PublicTest into random halves (N splits, 20 by default, seeded), runs the selection of each setting
on one half and scores it on the other, both ways, and prints each setting's mean held-out accuracy and its paired
difference from the default (10 rounds). PrivateTest is never read.
"""
import sys
import numpy as np

SETTINGS = [(10, None), (1, None), (20, None), (30, 10), (100, 10)]  # (rounds, max_models); the first is the default, 1 round the best single network


def cv_table(probs:list, y, settings=SETTINGS, splits:int=20, seed:int=0) -> dict:
    "{setting: [(held-out accuracy, distinct networks) for each half]}: selection on one half of the faces, scored on the other."
    from masked_emotions.ensembles import ensemble_selection
    rng, res = np.random.default_rng(seed), {s: [] for s in settings}
    for _ in range(splits):
        perm = rng.permutation(len(y)); halves = perm[:len(y) // 2], perm[len(y) // 2:]
        for fit, held in (halves, halves[::-1]):
            alone = [(p[fit].argmax(1) == y[fit]).mean() for p in probs]
            order = sorted(range(len(probs)), key=lambda i: -alone[i])  # as greedy_soup ranks them, on the fitting half
            for rounds, cap in settings:
                counts, _, _ = ensemble_selection([probs[i][fit] for i in order], y[fit], rounds, cap)
                p = sum(k * probs[i][held] for i, k in zip(order, counts))
                res[(rounds, cap)].append(((p.argmax(1) == y[held]).mean(), np.count_nonzero(counts)))
    return res


def report(res:dict) -> str:
    lines, (base, *others) = ['setting                      held-out accuracy   networks'], list(res)
    for (rounds, cap), r in res.items():
        a = np.array(r); lines.append(f'rounds {rounds:3d}, max_models {str(cap):4s}   {a[:, 0].mean():.2%} (sd {a[:, 0].std():.2%})   {a[:, 1].mean():.1f}')
    b = np.array(res[base])[:, 0]
    for s in others:
        d = (np.array(res[s])[:, 0] - b) * 100
        lines.append(f'rounds {s[0]}, max_models {s[1]} minus rounds {base[0]}: {d.mean():+.2f} points (sd {d.std():.2f}); '
                     f'better on {(d > 0).sum()} of {len(d)} held-out halves, worse on {(d < 0).sum()}')
    return '\n'.join(lines)


if __name__ == '__main__':
    args, splits = sys.argv[1:], '20'
    if '--splits' in args:
        at = args.index('--splits'); splits = (args[at + 1:at + 2] or [''])[0]; del args[at:at + 2]
    if not splits.isdigit() or int(splits) < 1: sys.exit(f'selection_cv: --splits takes a whole number of splits, at least 1; got {splits!r}')
    if len(args) < 3: sys.exit(__doc__)
    splits = int(splits)
    from masked_emotions.data import emotion_dataloaders
    from masked_emotions.models import load_model
    from masked_emotions.ensembles import _split_probs
    try: models = [load_model(m) for m in args[1:]]
    except (FileNotFoundError, ValueError) as e: sys.exit(f'selection_cv: {e}')
    dls = emotion_dataloaders(args[0], img_size=models[0][1]['img_size'], aug=False, progress=False)
    own = [_split_probs(net, card, dls, 'PublicTest') for net, card in models]  # each with its card's TTA, as greedy_soup does
    probs, y = [p for p, _ in own], own[0][1]
    print(f'{len(probs)} candidates, {len(y)} PublicTest faces, {splits} random splits into halves\n')
    print(report(cv_table(probs, y, splits=splits)))
