"""How often each face detector finds a face in a mask, against the same photo bare, and what the emotion model then gets right (issue 24, item 5).

    python tools/research/detector_recall.py FER2013 [N] [MODEL] [DETECTORS]

N random faces of FER2013's PrivateTest (seeded; default 200), each upscaled 5 times into a 480 px photo, bare, with
the grey polygon and with each mask type (seeded looks). For each detector (MTCNN, dlib HOG; each with and without
dlib's CNN detector as fallback): the share of photos where a face is found, the median seconds to find it, how far
the landmarked eyes are from where they are on the bare face (median, in face widths), and the emotion accuracy of
`predict` (MODEL: accurate or fast, default accurate) counting a missed face as wrong. Then the share found relative
to the bare photos. DETECTORS: a comma-separated subset of `masking.DETECTORS` (default all).
"""
import sys, time, numpy as np, cv2, pandas as pd
from pathlib import Path
from masked_emotions.core import *
from masked_emotions.masking import *
from masked_emotions.predict import predict
from masked_emotions.analysis import split_faces

def photo_of(face, k=5):
    "A 48 px face upscaled k times and set in a canvas twice its size (replicated border), as a photo; its landmarks scaled."
    f = fer_face(face); big = cv2.resize(face, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    pad = big.shape[0] // 2
    return cv2.cvtColor(cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE), cv2.COLOR_GRAY2RGB), f.points * k + pad

def main(fer2013, n, model, detectors=DETECTORS):
    items, faces = split_faces(fer2013)
    rng = np.random.default_rng(0); pick = rng.choice(len(faces), n, replace=False)
    rows = []
    for j, i in enumerate(pick):
        img, pts = photo_of(faces[i]); eyes = pts[36:48].reshape(2, 6, 2).mean(1); width = pts[16, 0] - pts[0, 0]
        for style in ('bare', 'grey', *MASK_TYPES):
            x = img if style == 'bare' else draw_mask(img, pts, style, item_seed(0, int(i)))
            for det in detectors:
                for fb in (False, True):
                    t = time.perf_counter(); found = detect_faces(x, det, cnn_fallback=fb); dt = time.perf_counter() - t
                    row = dict(face=i, style=style, detector=det, fallback=fb, found=len(found) > 0, secs=dt, eye_err=np.nan, right=False)
                    if found:
                        box, src, score = found[0]; p = landmarks(x, box)
                        row['eye_err'] = np.abs(p[36:48].reshape(2, 6, 2).mean(1) - eyes).max() / width
                        (r, *_) = predict(x, model, faces=[Face(box, p, src, score)])
                        row['right'] = r['emotion'] == items.label.iloc[i]
                    rows.append(row)
    df = pd.DataFrame(rows)
    t = df.groupby(['detector', 'fallback', 'style']).agg(found=('found', 'mean'), secs=('secs', 'median'), eye_err=('eye_err', 'median'), accuracy=('right', 'mean'))
    print(t.round(3).unstack(2).swaplevel(0, 1, axis=1).sort_index(axis=1).to_string())
    bare = df[df['style'] == 'bare'].groupby(['detector', 'fallback']).found.mean()
    print((df.groupby(['detector', 'fallback', 'style']).found.mean() / bare).round(3).unstack(2).to_string())

if __name__ == '__main__':
    if len(sys.argv) < 2 or not Path(sys.argv[1]).exists(): sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 200, sys.argv[3] if len(sys.argv) > 3 else None,
         sys.argv[4].split(',') if len(sys.argv) > 4 else DETECTORS)
