"""How often detect_faces finds a face in a mask, against the same photo bare (issue 24, item 5).

    python tools/detector_recall.py FER2013 [N]

N random faces of FER2013's PrivateTest (seeded; default 200), each upscaled 5 times into a 480 px photo, bare, with
the grey polygon and with each mask type (seeded looks); detect_faces with and without the CNN fallback. Prints the
share found and the median seconds per photo, then the share found relative to the bare photos.
"""
import sys, time, numpy as np, cv2, pandas as pd
from pathlib import Path
from masked_emotions.core import *
from masked_emotions.masking import *
from masked_emotions.analysis import split_faces
if len(sys.argv) < 2 or not Path(sys.argv[1]).exists(): sys.exit(__doc__)
n = int(sys.argv[2]) if len(sys.argv) > 2 else 200
items, faces = split_faces(sys.argv[1])
rng = np.random.default_rng(0); pick = rng.choice(len(faces), n, replace=False)
def photo_of(face, k=5):
    "A 48 px face upscaled k times and set in a canvas twice its size (replicated border), as a photo; its landmarks scaled."
    f = fer_face(face); big = cv2.resize(face, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    pad = big.shape[0] // 2
    return cv2.cvtColor(cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE), cv2.COLOR_GRAY2RGB), f.points * k + pad
rows = []
for j, i in enumerate(pick):
    img, pts = photo_of(faces[i])
    for style in ('bare', 'grey', *MASK_TYPES):
        x = img if style == 'bare' else draw_mask(img, pts, style, item_seed(0, int(i)))
        for fb in (False, True):
            t = time.perf_counter(); found = detect_faces(x, cnn_fallback=fb); dt = time.perf_counter() - t
            rows.append(dict(face=i, style=style, fallback=fb, found=len(found) > 0, src=found[0][1] if found else '', secs=dt))
df = pd.DataFrame(rows)
t = df.groupby(['fallback', 'style']).agg(found=('found', 'mean'), secs=('secs', 'median')).unstack(0)
print(t.round(3).to_string())
bare = df[df['style'] == 'bare'].groupby('fallback').found.mean()
print((df.groupby(['fallback', 'style']).found.mean() / bare).round(3).unstack(0).to_string())
