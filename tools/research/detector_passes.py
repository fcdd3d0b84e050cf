"""Faces the default detector misses, on faces that chose nothing, and what a second pass would find (issue 24, item 5).

    python tools/research/detector_passes.py FER2013 [N] [SPLIT]

N faces of SPLIT (default 300 of PublicTest: the detector's thresholds, its O-Net check and its mirror pass were chosen
on PrivateTest faces) made into photos as tools/research/detector_recall.py makes them, but at four sizes in turn (faces of
144 to 288 px), bare, with the grey polygon and with each mask type. Prints how many `detect_faces` (no CNN fallback)
misses of each, then what second passes find among those misses: the photo scaled by 1.5, by 0.709 ** 0.5 (a pyramid
half a step off) and by 0.709 ** -0.5, with and without their own mirror pass, and dlib's CNN detector; then the
false faces each pass finds on the photos with no face (tools/finetune_face_detector.py's, training and held out)
where the default finds none. Needs scikit-image and scikit-learn, as that tool does.
"""
import sys, time
from pathlib import Path
import numpy as np, cv2


def main(fer2013, n, split):
    sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]  # detector_recall beside it, finetune_face_detector in tools/
    from finetune_face_detector import background_files, load_photo, short
    from detector_recall import photo_of
    from masked_emotions.masking import detect_faces, draw_mask, item_seed, MASK_TYPES
    from masked_emotions.analysis import split_faces
    _, faces = split_faces(fer2013, split)
    pick = np.random.default_rng(1).choice(len(faces), n, replace=False)
    photos = []
    for j, i in enumerate(pick):
        img, pts = photo_of(faces[i], k=(3, 4, 5, 6)[j % 4])
        photos += [('bare', img)] + [(m, draw_mask(img, pts, m, item_seed(0, int(i)))) for m in ('grey', *MASK_TYPES)]

    def scaled(im, k, mirror):
        s = cv2.resize(im, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
        return detect_faces(s, cnn_fallback=False, mirror=mirror, min_face=max(12, round(40 * k)))
    passes = {'up1.5': lambda im: scaled(im, 1.5, False), 'up1.5+mirror': lambda im: scaled(im, 1.5, True),
              'half': lambda im: scaled(im, 0.709 ** 0.5, False), 'half+mirror': lambda im: scaled(im, 0.709 ** 0.5, True),
              'up1.19+mirror': lambda im: scaled(im, 0.709 ** -0.5, True),
              'cnn': lambda im: detect_faces(im, 'hog', cnn_fallback=True)}
    tot, miss = {}, []
    for m, img in photos:
        tot[m] = tot.get(m, 0) + 1
        if not detect_faces(img, cnn_fallback=False): miss.append((m, img))
    print(split, n, 'faces; photos', tot, 'missed by the default', {m: sum(1 for k, _ in miss if k == m) for m in tot}, flush=True)
    for name, f in passes.items():
        got, t = {m: 0 for m in tot}, []
        for m, img in miss:
            t0 = time.perf_counter(); got[m] += len(f(img)) > 0; t.append(time.perf_counter() - t0)
        print(f'{name}: found {got} (of the missed), median {np.median(t) * 1000:.0f} ms', flush=True)
    bg = sum(background_files(), [])
    empty = [(short(f), load_photo(f)) for f in bg]
    empty = [(s, im) for s, im in empty if not detect_faces(im, cnn_fallback=False)]
    print(len(bg), 'photos with no face;', len(empty), 'where the default finds nothing', flush=True)
    for name, f in passes.items():
        if name == 'cnn': continue
        fa = {s: len(f(im)) for s, im in empty}
        print(f'{name}: false faces {sum(fa.values())} {({k: v for k, v in fa.items() if v})}', flush=True)


if __name__ == '__main__':
    if len(sys.argv) < 2 or not Path(sys.argv[1]).exists(): sys.exit(__doc__)
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 300, sys.argv[3] if len(sys.argv) > 3 else 'PublicTest')
