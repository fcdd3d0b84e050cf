"""Write each member of an ensemble as its own model, so that ensemble selection can take them as candidates again.

    python tools/split_ensemble.py ENSEMBLE DEST_DIR

ENSEMBLE: a model card of arch 'ensemble' (a model_dir, card or .safetensors, or 'default' for the bundled model).
Each member is written to DEST_DIR/NAME.{json,safetensors}, NAME made from the run it came from (the card's
`averaged_from`: runs/kd16/final.json -> kd16f, runs/soup1617/best.json -> soup1617), with the ensemble's card
fields (classes, normalisation, TTA) and its own arch. The weights are the members' own, bit for bit.
"""
import os, sys
from pathlib import Path


def member_name(src:str) -> str:
    "runs/kd16/final.json -> kd16f, runs/kd17/best.json -> kd17b; a soup or ensemble -> its folder; runs/members/x.json -> x."
    p = Path(src); run = p.parent.name
    if run in ('', '.', 'members'): return p.stem
    if run.startswith(('soup', 'greedy', 'ens')): return run
    return run + {'final': 'f', 'best': 'b'}.get(p.stem, '_' + p.stem)


if __name__ == '__main__':
    if len(sys.argv) != 3: sys.exit(__doc__)
    from masked_emotions.models import ENSEMBLE, load_model, save_model
    try: net, card = load_model(None if sys.argv[1] == 'default' else sys.argv[1])
    except (FileNotFoundError, ValueError) as e: sys.exit(f'split_ensemble: {e}')
    if card['arch'] != ENSEMBLE: sys.exit(f"split_ensemble: {sys.argv[1]} is a single {card['arch']}, not an ensemble")
    keep = {k: v for k, v in card.items() if k not in ('arch', 'members', 'averaged_from', 'greedy', 'metrics', 'command', 'created')}
    names = [member_name(s) for s in card['averaged_from']]
    if len(set(names)) != len(names): names = [f'member{i}' for i in range(len(names))]
    here = lambda a: os.path.relpath(a) if os.path.isabs(a) else a  # as the repository's commands write paths
    if keep.get('reproduce'): keep['reproduce'] += f' && python tools/split_ensemble.py {here(sys.argv[1])} {here(sys.argv[2])}'  # a run from a member remakes it so
    for m, spec, name, src in zip(net.members, card['members'], names, card['averaged_from']):
        print(save_model(m, Path(sys.argv[2]) / name, dict(keep, arch=spec['arch'], source=f'member of {sys.argv[1]}: {src}')))
