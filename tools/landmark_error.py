"""How far landmarks found on masked faces are from the same faces' bare landmarks, per landmark group and mask type.

    python tools/landmark_error.py FER2013 [--every N] [--write]

On every Nth PrivateTest face (default 4: 897 faces), each mask type drawn from the bare face's landmarks (as
`mask_matrix` draws it), the 68 points found on the masked crop by dlib (`fer_landmarks`, what `predict` used before
the landmark network) and by the bundled landmark network (`masked_landmarks`, what it uses on a masked face), against
the bare face's dlib points. Mean distance in pixels of the 48 px crop, per group (jaw, brows, nose bridge, nose tip,
eyes, mouth) and over the points the grey occluder is drawn from. --write stores the table in the landmark network's
card (`metrics.error_px`), which the model card shows.
"""
import sys, json
from pathlib import Path
import numpy as np, pandas as pd
from masked_emotions.core import atomic_path
from masked_emotions.analysis import split_faces, matrix_faces
from masked_emotions.masking import fer_landmarks, MASK_POINTS
from masked_emotions.models import mask_landmarks_card, read_card
from masked_emotions.predict import masked_landmarks

GROUPS = dict(jaw=range(0, 17), brows=range(17, 27), nose_bridge=range(27, 31), nose_tip=range(31, 36), eyes=range(36, 48), mouth=range(48, 68),
              occluder=MASK_POINTS)  # dlib's 68-point layout; the occluder's points: `masking.MASK_POINTS`


def group_errors(points: np.ndarray, truth: np.ndarray) -> dict:
    "Mean point distance per group of `GROUPS`, in pixels."
    d = np.linalg.norm(points - truth, axis=2)
    return {g: round(float(d[:, list(ix)].mean()), 3) for g, ix in GROUPS.items()}


def landmark_errors(src, every: int = 4, masks=('grey', 'surgical', 'cloth', 'kn95')) -> pd.DataFrame:
    "Rows '<mask> dlib' and '<mask> network': `group_errors` of each finder on the masked faces."
    items, faces = split_faces(src, 'PrivateTest')
    items, faces = items.iloc[::every], faces[::every]
    truth, rows = fer_landmarks(faces), {}
    for m in masks:
        x = matrix_faces(faces, truth, m, 0, items['index'])
        rows[f'{m} dlib'] = group_errors(fer_landmarks(x), truth)
        rows[f'{m} network'] = group_errors(masked_landmarks(list(x)), truth)
    return pd.DataFrame(rows).T


if __name__ == '__main__':
    if len(sys.argv) < 2 or not Path(sys.argv[1]).exists(): sys.exit(__doc__)
    every = int(sys.argv[sys.argv.index('--every') + 1]) if '--every' in sys.argv else 4
    errors = landmark_errors(sys.argv[1], every)
    print(errors.round(2).to_string())
    if '--write' in sys.argv:
        card = read_card(mask_landmarks_card())
        card.setdefault('metrics', {})['error_px'] = errors.to_dict('index')
        card['metrics']['error_faces'] = f'every {every}th PrivateTest face'
        with atomic_path(mask_landmarks_card()) as p: p.write_text(json.dumps(card, indent=2))
