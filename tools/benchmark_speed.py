"""Speed of the inference paths on this machine: run it with nothing else running.

    python tools/benchmark_speed.py [--quick]
    python tools/benchmark_speed.py --ab fast,fast_int8 [BACKEND]   (a name:notta runs without its test-time augmentation)

Prints a markdown table: faces/s on 512 batched 48 px crops for each bundled model (accurate, fast, int8, fast_int8; fast also with tta=True) and backend, with
"before" (the per-view torch loop of face_probs before the fast path, measured in the same run); one
640x480 photo end to end; the detectors (MTCNN fine-tuned, the default, and as published; HOG, and the CNN fallback on a photo HOG misses); and video
frames/s on a 640x480, 30 fps clip with one face; and the first photo of a fresh process (import, then the first predict:
what a one-photo command waits for). Every figure is the median of 3 runs.
With --ab, only two models' faces/s on the same crops, alternately, three rounds (BACKEND default openvino): a
comparison that a machine whose speed drifts within a run cannot tilt.
"""
import json, statistics, subprocess, sys, tempfile, time
from pathlib import Path
import cv2, numpy as np, torch
from masked_emotions.core import load_image, example_photo
from masked_emotions.models import face_probs, zoom_faces, BACKENDS, _installed
from masked_emotions.predict import get_model, predict
from masked_emotions.masking import detect_faces
from masked_emotions.video import example_clip, predict_video, video_frames

RUNS = 3


def median_rate(f, n: int) -> tuple:
    "Median items/s of `RUNS` timed calls of `f` (after one warm-up call), and each run's rate."
    f(); rates = []
    for _ in range(RUNS): t = time.perf_counter(); f(); rates.append(n / (time.perf_counter() - t))
    return statistics.median(rates), rates


def before_face_probs(net, faces, card, tta=True, bs=256):
    "face_probs as it was before the fast path: torch, one call per TTA view, contiguous memory."
    x = torch.as_tensor(np.asarray(faces), dtype=torch.float32)[:, None] / 255
    x = (x - card['normalize']['mean'][0]) / card['normalize']['std'][0]
    zooms = card.get('tta_zooms', [1]) if tta else [1]
    out = []
    with torch.inference_mode():
        for b in x.split(bs):
            views = [zoom_faces(b, z) for z in zooms]
            if tta: views += [v.flip(-1) for v in views]
            out.append(sum(net(v).softmax(1) for v in views) / len(views))
    return torch.cat(out).numpy()


FIRST_PHOTO = """import json, sys, time
t = time.perf_counter()
from masked_emotions.predict import predict
from masked_emotions.core import example_photo
t1 = time.perf_counter(); predict(example_photo(), model=sys.argv[1], backend=None if sys.argv[2] == 'None' else sys.argv[2]); t2 = time.perf_counter()
print(json.dumps([t1 - t, t2 - t1]))"""


def first_photo(model: str, backend) -> list:
    "[import s, first predict s] of `RUNS` fresh processes predicting the example photo with `model` and `backend`."
    runs = [json.loads(subprocess.run([sys.executable, '-c', FIRST_PHOTO, model, str(backend)], capture_output=True, text=True, check=True).stdout)
            for _ in range(RUNS)]
    return [sorted(r[i] for r in runs) for i in (0, 1)]


def fmt(rate, rates, unit=''): return f"{rate:,.0f}{unit} ({', '.join(f'{r:,.0f}' for r in rates)})"


def bench_inputs(n_frames: int) -> tuple:
    "(folder, a 640x480 clip of `n_frames` with one face of ~100 px, its face squares, its first frame, 512 copies of that face as a 48 px crop)."
    clip_dir = Path(tempfile.mkdtemp())
    clip, squares = example_clip(clip_dir / 'clip.mp4', n_frames)
    frame = next(video_frames(clip)[2])[2]
    crop = cv2.resize(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)[squares[0][1]:squares[0][3], squares[0][0]:squares[0][2]], (48, 48))
    return clip_dir, clip, squares, frame, np.stack([crop] * 512)


def main(quick=False):
    clip_dir, clip, squares, frame, faces = bench_inputs(60 if quick else 150)
    print(f'torch threads: {torch.get_num_threads()}\n')
    print('| model | path | 48 px faces/s (runs) |\n|---|---|---|')
    for name in ('accurate', 'fast'):
        net, card = get_model(name); tta = card.get('tta', False)
        rate = median_rate(lambda: before_face_probs(net, faces, card, tta), len(faces))
        print(f"| {name} (TTA {'on' if tta else 'off'}) | before: torch, a call per view | {fmt(*rate)} |", flush=True)
        for b in [b for b in BACKENDS if b == 'torch' or _installed(b)]:
            rate = median_rate(lambda: face_probs(net, faces, card, tta, backend=b, device='cpu'), len(faces))
            print(f'| {name} | {b} | {fmt(*rate)} |', flush=True)
    net, card = get_model('fast')
    for b in [b for b in BACKENDS if b != 'torch' and _installed(b)]:  # tta=True: the fast card has no zooms, so its mirror image
        rate = median_rate(lambda: face_probs(net, faces, card, True, backend=b, device='cpu'), len(faces))
        print(f'| fast, tta=True (and its mirror image) | {b} | {fmt(*rate)} |', flush=True)
    for name, label in (('int8', 'int8 (TTA on)'), ('fast_int8', 'fast_int8 (and its mirror image)')):
        net, card = get_model(name)  # a model quantised: an ONNX file, no torch path
        for b in [b for b in BACKENDS if b != 'torch' and _installed(b)]:
            rate = median_rate(lambda: face_probs(net, faces, card, card.get('tta', False), backend=b, device='cpu'), len(faces))
            print(f'| {label} | {b} | {fmt(*rate)} |', flush=True)
    print('\n| what | median ms (runs) |\n|---|---|')
    stretched = cv2.resize(load_image(example_photo()), (640, 480))
    for label, f in [('MTCNN fine-tuned (default), 640x480 (faces from 40 px)', lambda: detect_faces(frame)),
                     ('MTCNN as published, 640x480 (faces from 40 px)', lambda: detect_faces(frame, 'mtcnn_original')),
                     ('MTCNN, 640x480, min_face=80', lambda: detect_faces(frame, min_face=80)),
                     ('MTCNN, 640x480, the photo HOG misses', lambda: detect_faces(stretched)),
                     ('HOG, 640x480 (faces from 40 px)', lambda: detect_faces(frame, 'hog')),
                     ('HOG, 640x480, min_face=80', lambda: detect_faces(frame, 'hog', min_face=80)),
                     ('HOG misses, CNN fallback, 640x480', lambda: detect_faces(stretched, 'hog')),
                     ('photo 640x480 end to end, fast model', lambda: predict(frame, model='fast')),
                     ('photo 640x480 end to end, fast model, min_face=80', lambda: predict(frame, model='fast', min_face=80)),
                     ('photo 640x480 end to end, fast model, MTCNN as published', lambda: predict(frame, model='fast', detector='mtcnn_original')),
                     ('photo 640x480 end to end, fast model, HOG', lambda: predict(frame, model='fast', detector='hog')),
                     ('photo 640x480 end to end, accurate model', lambda: predict(frame)),
                     ('photo 640x480 end to end, int8 model', lambda: predict(frame, model='int8')),
                     ('photo 640x480 end to end, fast_int8 model', lambda: predict(frame, model='fast_int8'))]:
        ms = [1000 / r for r in median_rate(f, 1)[1]]
        print(f"| {label} | {statistics.median(ms):.0f} ({', '.join(f'{m:.0f}' for m in ms)}) |", flush=True)
    print('\n| video, 640x480 30 fps, one face | frames/s (runs) |\n|---|---|')
    n = len(squares)
    for model, every in [('fast', 1), ('fast', 2), ('fast', 3), ('accurate', 1), ('accurate', 3), ('int8', 1), ('fast_int8', 1)]:
        rate = median_rate(lambda: predict_video(clip, model, every, clip_dir / 'out', progress=False), n)
        print(f'| {model}, every={every} | {rate[0]:.1f} ({", ".join(f"{r:.1f}" for r in rate[1])}) |', flush=True)
    print('\n| first photo of a fresh process (example photo) | import s (runs) | first predict s (runs) |\n|---|---|---|')
    for model, backend in [('fast', None), ('fast', 'openvino'), ('accurate', None)]:
        imp, first = first_photo(model, backend)
        print(f"| {model}, backend={backend} | {statistics.median(imp):.1f} ({', '.join(f'{v:.1f}' for v in imp)}) | {statistics.median(first):.1f} ({', '.join(f'{v:.1f}' for v in first)}) |", flush=True)


def ab(names: list, backend: str = 'openvino'):
    "Faces/s of two models on the same 512 crops as `main`'s, alternately, three rounds of `median_rate` each."
    faces, models = bench_inputs(2)[-1], [get_model(n.removesuffix(':notta')) for n in names]
    tta = [False if n.endswith(':notta') else card.get('tta', False) for n, (_, card) in zip(names, models)]
    print(f'| round | {" | ".join(names)} ({backend}, faces/s) |\n|---|{"---|" * len(names)}')
    for r in range(3):
        rates = [median_rate(lambda: face_probs(net, faces, card, t, backend=backend, device='cpu'), len(faces)) for (net, card), t in zip(models, tta)]
        print(f'| {r + 1} | ' + ' | '.join(fmt(*rate) for rate in rates) + ' |', flush=True)


if __name__ == '__main__':
    if sys.argv[1:] not in ([], ['--quick']) and sys.argv[1:2] != ['--ab']: sys.exit(__doc__)  # --help, or a mistyped option: the usage, not a 10-minute run
    if '--ab' in sys.argv:
        rest = sys.argv[sys.argv.index('--ab') + 1:]
        if not rest or len(rest[0].split(',')) != 2: sys.exit(__doc__)
        ab(rest[0].split(','), *rest[1:2])
    else: main('--quick' in sys.argv)
