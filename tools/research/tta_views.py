"""Measure which test-time augmentation views help a model, on the validation split.

    python tools/research/tta_views.py MODEL FER2013 [SPLIT]

MODEL: a model_dir, card or safetensors file (default: the bundled model). FER2013: as for masked_emotions_train
(masked once, cached). SPLIT: PublicTest (default; choose views on validation data, never on PrivateTest).
Prints the accuracy of each single view (the face, zoomed 1.05 / 1.1, shifted 2 px, rotated 5 degrees, each
also mirrored) and of averages of views; `models.TTA_ZOOMS` was chosen from this table.
"""
import sys, time
import numpy as np, torch, torch.nn.functional as F
from masked_emotions.core import fer2013_items, read_item
from masked_emotions.models import load_model, zoom_faces
from masked_emotions.data import masked_source


def shift(x, dx, dy):
    p = F.pad(x, (2, 2, 2, 2), mode='replicate'); return p[..., 2+dy:50+dy, 2+dx:50+dx]

def rotate(x, deg):
    a = np.deg2rad(deg); th = torch.tensor([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0]], dtype=x.dtype)
    return F.grid_sample(x, F.affine_grid(th[None].expand(len(x), 2, 3), x.shape, align_corners=False), padding_mode='reflection', align_corners=False)

VIEWS = {'face': lambda x: x, 'zoom1.05': lambda x: zoom_faces(x, 1.05), 'zoom1.1': lambda x: zoom_faces(x, 1.1),
         'right2': lambda x: shift(x, 2, 0), 'left2': lambda x: shift(x, -2, 0), 'down2': lambda x: shift(x, 0, 2), 'up2': lambda x: shift(x, 0, -2),
         'rot+5': lambda x: rotate(x, 5), 'rot-5': lambda x: rotate(x, -5)}
MIRRORED = lambda names: [n + m for n in names for m in ('', '/mirror')]
AVERAGES = {'face only (no TTA)': ['face'], 'face + mirror': MIRRORED(['face']), '+ zoom 1.05': MIRRORED(['face', 'zoom1.05']),
            '+ zoom 1.1': MIRRORED(['face', 'zoom1.1']), '+ zooms 1.05, 1.1': MIRRORED(['face', 'zoom1.05', 'zoom1.1']),
            '+ 2 px shifts': MIRRORED(['face', 'right2', 'left2', 'down2', 'up2']), '+ 5 degree rotations': MIRRORED(['face', 'rot+5', 'rot-5']),
            'all 18 views': MIRRORED(VIEWS)}

if __name__ == '__main__':
    args = sys.argv[1:]
    if len(args) < 2: sys.exit(__doc__)
    model, data, split = args[0], args[1], (args[2] if len(args) > 2 else 'PublicTest')
    net, card = load_model(None if model == 'default' else model)
    items = fer2013_items(masked_source(data)); sub = items[items.split == split]
    faces = np.stack([read_item(r) for r in sub.to_dict('records')])
    y = np.array([card['classes'].index(l) for l in sub.label])
    x = (torch.as_tensor(faces, dtype=torch.float32)[:, None] / 255 - card['normalize']['mean'][0]) / card['normalize']['std'][0]
    probs, t = {}, time.time()
    with torch.inference_mode():
        for name, view in VIEWS.items():
            for m in ('', '/mirror'):
                v = view(x.flip(-1) if m else x)
                probs[name + m] = torch.cat([net(b).softmax(1) for b in v.split(512)]).numpy()
    acc = lambda p: (p.argmax(1) == y).mean()
    print(f'{model} on {len(y)} {split} faces ({len(probs)} views in {time.time() - t:.0f} s)\n\nsingle view        accuracy')
    for k, p in probs.items(): print(f'{k:18s} {acc(p):.4f}')
    print('\naverage of views   accuracy')
    for k, names in AVERAGES.items(): print(f'{k:22s} {acc(sum(probs[n] for n in names)):.4f}')
