"""How much of a worn mask's cost is its look, and how much the face it hides (issue 24: why cloth+grey falls short)?

    python tools/research/grey_cover.py FER2013 [SPLIT] [TYPES]

The faces of SPLIT (default PublicTest) in each mask type of TYPES (default surgical,cloth,kn95, drawn with the
evaluation matrix's seeds), then grey drawn over the mask three ways: the training polygon, as `predict` draws it
(the matrix's `+grey` column); grey over the mask's whole outline, the one it was drawn with (an oracle: `predict`
cannot know it), so that nothing of the mask's look is left; and a larger polygon (jaw points 1..15 to nose point 28).
Prints the accuracy of the bundled accurate model (its TTA) and of the fast model under each, and under grey alone.
If the oracle scores as the training polygon does, what the mask costs is the face it hides, not how it looks.
"""
import sys
from pathlib import Path
import numpy as np, cv2

COVERS = ('polygon', 'outline', 'jaw1-15')


def cover(face: np.ndarray, points: np.ndarray, how: str, look) -> np.ndarray:
    "`face` (uint8 gray) with grey drawn over its mask `how`: the training polygon, the mask of `look`'s whole outline with it, or jaw points 1..15 and 28."
    from masked_emotions.masking import draw_mask, mask_outline, mask_colour
    grey = float(np.array(mask_colour('grey'), float) @ (0.299, 0.587, 0.114))
    fill = lambda img, poly: cv2.fillPoly(img.copy(), [np.round(np.asarray(poly) * 16).astype(np.int32)], (grey,), lineType=cv2.LINE_AA, shift=4)
    if how == 'polygon': return draw_mask(face, points, 'grey')
    if how == 'outline': return fill(draw_mask(face, points, 'grey'), mask_outline(points, look))
    if how == 'jaw1-15': return fill(face, np.asarray(points, np.float32)[list(range(1, 16)) + [28]])
    raise ValueError(f'unknown cover {how!r}: expected one of {COVERS}')


def main(fer2013, split, types):
    from masked_emotions.analysis import split_faces
    from masked_emotions.masking import fer_landmarks, mask_faces, item_seed, mask_look
    from masked_emotions.models import load_model, face_probs
    items, faces = split_faces(fer2013, split)
    points, index = fer_landmarks(faces), items['index'].values
    models = {name: load_model(m) for name, m in (('accurate', None), ('fast', 'fast'))}

    def scores(x):
        return ' '.join(f"{n} {(np.array(c['classes'])[face_probs(net, x, c, c.get('tta', False), backend=None).argmax(1)] == items.label.values).mean():.4f}"
                        for n, (net, c) in models.items())
    print(f'{split}, {len(faces)} faces; grey alone: {scores(mask_faces(faces, points, "grey", 0, index))}', flush=True)
    for t in types:
        worn, seeds = mask_faces(faces, points, t, 0, index), [item_seed(0, int(i)) for i in index]
        for how in COVERS:
            x = np.stack([cover(f, p, how, mask_look(t, s)) for f, p, s in zip(worn, points, seeds)])
            print(f'{t}, grey over it ({how}): {scores(x)}', flush=True)


if __name__ == '__main__':
    if len(sys.argv) < 2 or not Path(sys.argv[1]).exists(): sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else 'PublicTest', (sys.argv[3] if len(sys.argv) > 3 else 'surgical,cloth,kn95').split(','))
