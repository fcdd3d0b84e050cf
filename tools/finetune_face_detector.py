"""Fine-tune MTCNN's R-Net and O-Net to find faces in masks: the recipe of `masked_emotions/assets/mtcnn_masks.safetensors`.

    python tools/finetune_face_detector.py FER2013 OUT.pt [N_FACES] [EPOCHS]
    python tools/finetune_face_detector.py FER2013 OUT.pt --evaluate [N]
    python tools/finetune_face_detector.py FER2013 OUT.pt --bundle     # OUT.pt -> the package's safetensors
    python tools/finetune_face_detector.py FER2013 - --pnet 0.6,0.4,0.3 [N]   # the shipped detector at each P-Net threshold

Labels come from the pretrained MTCNN itself: N_FACES Training faces of FER2013 (default 8000) are upscaled 2 to 6
times into photos (tinted, on a replicated or plain border); where the pretrained MTCNN finds the bare face, its box
and five points become the target for crops of that photo bare and with a drawn mask (grey, surgical or cloth; kn95
is held out): positives (IoU >= 0.65 with the box), part faces (0.4 to 0.65; box targets only) and negatives
(< 0.3). Negatives besides: random crops of photos with no face - two thirds of the Debian wallpapers (apt-get
install gnome-backgrounds plasma-workspace-wallpapers mate-backgrounds ukui-wallpapers lomiri-wallpapers; those
with a person or a drawn face left out), half of scikit-image's sample photos, scikit-learn's two, the Rust book's
figures when rustup's docs are installed - and 20,000 synthetic scenes of ellipses, coins, polygons and text. The
other third of the wallpapers and the other half of scikit-image's photos are held out to count false faces.
Two rounds, as MTCNN's authors trained it: round 1 fine-tunes the pretrained networks; then the round-1 cascade is run
over the negative photos and what P-Net proposes (for R-Net) and what R-Net passes at 0.3 (for O-Net) join the
negatives (hard negatives), and round 2 fine-tunes the round-1 networks again. Adam, learning rate 5e-5, EPOCHS
passes (default 2) over each network each round. Needs scikit-image and scikit-learn. Prints, per epoch, the loss,
the face/non-face accuracy and the share of background crops taken for faces; writes OUT.pt (the two networks'
state dicts) after each round.

--evaluate: the share of N PrivateTest faces (default 100; each upscaled 5 times into a 480 px photo, as
tools/research/detector_recall.py makes them) found bare and under each mask, the extra boxes on those photos, and the false
faces on the held-out photos with no face, for the wheel's networks and for OUT.pt's (at the wheel's thresholds and at
the package's, `faces.MTCNN_THRESHOLDS`); then the false faces of the package's `detect_faces` as shipped.

--pnet: the package's `detect_faces` as shipped (no CNN fallback) with the fine-tuned networks' P-Net threshold set
to each value in turn, with and without its mirror pass: the share of the same N faces found bare and under each
mask, that share relative to the bare photos, the extra boxes on those one-face photos, and the false faces on the
held-out photos.
"""
import sys, os, glob, numpy as np, cv2, torch, torch.nn.functional as F
from functools import lru_cache
from masked_emotions.faces import load_mtcnn_net, mtcnn_faces, box_crops, square_boxes, _proposals, _refine
from masked_emotions.masking import fer_face, draw_mask
from masked_emotions.analysis import split_faces

def photo(face, rng):
    "A FER2013 face upscaled into a tinted photo with a border; its scale and offset."
    k = rng.uniform(2, 6); big = cv2.resize(face, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC)
    t, b, l, r = (int(big.shape[0] * rng.uniform(0.2, 1.0)) for _ in range(4))
    img = cv2.copyMakeBorder(big, t, b, l, r, cv2.BORDER_REPLICATE) if rng.random() < 0.5 else cv2.copyMakeBorder(big, t, b, l, r, cv2.BORDER_CONSTANT, value=int(rng.integers(256)))
    tint = np.array([1.0, rng.uniform(0.8, 0.95), rng.uniform(0.65, 0.9)]) if rng.random() < 0.7 else np.ones(3)
    return np.clip(cv2.cvtColor(img, cv2.COLOR_GRAY2RGB) * tint, 0, 255).astype(np.uint8), k, np.array([l, t])

def iou(a, b):
    w = max(0, min(a[2], b[2]) - max(a[0], b[0])); h = max(0, min(a[3], b[3]) - max(a[1], b[1])); i = w * h
    return i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i)

def crops_around(b, W, H, rng):
    "Square crops near face box `b`: 3 positives, 2 part faces, 3 negatives, with their labels (1, -1, 0)."
    size = max(b[2] - b[0], b[3] - b[1]); cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2; out = []
    for kind, n, lab in (('pos', 3, 1), ('part', 2, -1), ('neg', 3, 0)):
        for _ in range(n):
            for _ in range(50):
                if kind == 'neg': s = size * rng.uniform(0.25, 1.5); x1, y1 = rng.uniform(-s / 3, W - s * 2 / 3), rng.uniform(-s / 3, H - s * 2 / 3)
                else: j = 0.08 if kind == 'pos' else 0.3; s = size * rng.uniform(0.85, 1.15); x1, y1 = cx + size * rng.uniform(-j, j) - s / 2, cy + size * rng.uniform(-j, j) - s / 2
                c = np.array([x1, y1, x1 + s, y1 + s]); o = iou(c, b)
                if (lab == 1 and o >= 0.65) or (lab == -1 and 0.4 <= o < 0.65) or (lab == 0 and o < 0.3): out.append((c, lab)); break
    return np.array([c for c, _ in out]), np.array([l for _, l in out])

def face_samples(src, n, rng):
    "Crops (24 and 48 px), labels, box and point targets from `n` Training faces, bare and masked."
    _, faces = split_faces(src, 'Training'); data = {s: dict(x=[], cls=[], box=[], pts=[]) for s in (24, 48)}
    for i in rng.choice(len(faces), n, replace=False):
        img, k, off = photo(faces[i], rng); pts68 = fer_face(faces[i]).points * k + off
        boxes, _, points = mtcnn_faces(img, nets='original')
        if not len(boxes): continue
        b, p = boxes[0], points[0]
        masked = draw_mask(img, pts68, str(rng.choice(('grey', 'surgical', 'cloth'))), int(rng.integers(1 << 30)))
        cr, lab = crops_around(b, img.shape[1], img.shape[0], rng); cr = np.round(cr); wh = cr[:, 2:] - cr[:, :2] + 1
        box_t = (b[None] - cr) / np.tile(wh, 2); pts_t = (p[None] - cr[:, None, :2] + 1) / wh[:, None]
        for x in (img, masked):
            xn = (x.astype(np.float32) - 127.5) / 128
            for s, d in data.items():
                d['x'].append(box_crops(xn, cr, s).half()); d['cls'].append(torch.from_numpy(lab)); d['box'].append(torch.from_numpy(box_t).float())
                d['pts'].append(torch.from_numpy(np.concatenate([pts_t[:, :, 0], pts_t[:, :, 1]], 1)).float())
    return {s: {k: torch.cat(v) for k, v in d.items()} for s, d in data.items()}

WALLPAPER_DIRS = ('/usr/share/backgrounds', '/usr/share/wallpapers')
WITH_FACES = ('Autumn/', 'SafeLanding/', 'firstgeneration', 'friends_by_', 'the-mouse', 'vnc-', 'Arc-Colors-Transparent', 'mate/abstract/S', 'Waves.png', 'MATE-Stripes')  # a person, a drawn face, or blank once read

def wallpapers():
    "One file per Debian wallpaper (the middle size of each Plasma wallpaper), in a fixed order, those listed in `WITH_FACES` left out."
    fs = []
    for d in sorted(glob.glob(WALLPAPER_DIRS[1] + '/*/')):
        imgs = sorted(glob.glob(d + 'contents/images/*.*'), key=os.path.getsize)
        if imgs: fs.append(imgs[len(imgs) // 2])
    fs += [f for f in sorted(glob.glob(WALLPAPER_DIRS[0] + '/**/*.*', recursive=True)) if f.lower().endswith(('.jpg', '.png', '.jpeg', '.webp')) and '/sway/' not in f]
    return [f for f in fs if not any(w in f for w in WITH_FACES) and cv2.imread(f) is not None]

def background_files():
    "Photos with no face: (for training, held out)."
    import skimage.data as skd, sklearn.datasets as skl
    sk = sorted(f for f in glob.glob(os.path.dirname(skd.__file__) + '/*.*') if f.endswith(('.png', '.jpg')) and not f.endswith(('astronaut.png', 'camera.png')))
    rust = sorted(glob.glob(os.path.expanduser('~/.rustup/toolchains/stable-*/share/doc/rust/html/**/*.png'), recursive=True))[:40]
    wp = wallpapers()
    readable = lambda fs: [f for f in fs if cv2.imread(f) is not None]  # some of the Rust book's PNGs OpenCV cannot read; `wallpapers` checked its own
    return readable(sk[::2] + sorted(glob.glob(os.path.dirname(skl.__file__) + '/images/*.jpg')) + rust) + wp[0::3] + wp[2::3], readable(sk[1::2]) + wp[1::3]

def short(f):
    "A photo's name: a Plasma wallpaper's folder, else the file name."
    return f.split('/wallpapers/')[1].split('/')[0] if '/wallpapers/' in f else os.path.basename(f)

@lru_cache(None)
def load_photo(f, side=800):
    "Photo `f` as RGB, its longer side at most `side` px (read once per process: big PNGs are slow to decode)."
    im = cv2.cvtColor(cv2.imread(f), cv2.COLOR_BGR2RGB); k = side / max(im.shape[:2])
    return cv2.resize(im, None, fx=k, fy=k, interpolation=cv2.INTER_AREA) if k < 1 else im

def background_crops(files, n, s, rng):
    out = []
    for f in files:
        x = (load_photo(f, 2000).astype(np.float32) - 127.5) / 128; H, W = x.shape[:2]
        sz = rng.uniform(12, min(H, W), n); x1, y1 = rng.uniform(0, W - sz), rng.uniform(0, H - sz)
        out.append(box_crops(x, np.stack([x1, y1, x1 + sz, y1 + sz], 1), s))
    return torch.cat(out)

def synthetic_scene(rng):
    "A 96 px scene of shaded ellipses, ringed coins, polygons or text on a gradient, with noise and blur: no face."
    c = np.clip(rng.uniform(0, 255, 3) + np.linspace(-1, 1, 96)[None, :, None] * rng.uniform(-80, 80, 3) + np.linspace(-1, 1, 96)[:, None, None] * rng.uniform(-80, 80, 3), 0, 255).astype(np.uint8)
    kind = rng.integers(4)
    for _ in range(int(rng.integers(1, 8))):
        col = tuple(int(v) for v in rng.integers(0, 256, 3)); cx, cy = (int(v) for v in rng.uniform(0, 96, 2)); a, b = (int(v) for v in rng.uniform(6, 50, 2))
        if kind == 0: cv2.ellipse(c, (cx, cy), (a, b), float(rng.uniform(0, 180)), 0, 360, col, -1)
        elif kind == 1: cv2.circle(c, (cx, cy), a, col, -1); cv2.circle(c, (cx, cy), int(a * rng.uniform(0.3, 0.9)), tuple(int(v * 0.7) for v in col), int(rng.integers(1, 4)))
        elif kind == 2: cv2.fillPoly(c, [rng.uniform(0, 96, (int(rng.integers(3, 7)), 2)).astype(np.int32)], col)
        else: cv2.putText(c, ''.join(chr(int(v)) for v in rng.integers(65, 90, 4)), (cx - 40, cy), cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.5, 2)), col, int(rng.integers(1, 4)))
    c = c.astype(np.float32) + rng.normal(0, rng.uniform(0, 15), c.shape).astype(np.float32)
    if rng.random() < 0.5: c = cv2.GaussianBlur(c, (0, 0), float(rng.uniform(0.5, 3)))
    if rng.random() < 0.3: c = np.repeat(c.mean(2, keepdims=True), 3, 2)
    x0, y0 = rng.integers(0, 40, 2); w = int(rng.integers(40, 96 - max(x0, y0) + 1))
    return (np.clip(c, 0, 255)[y0:y0 + w, x0:x0 + w] - 127.5) / 128

def synthetic_crops(n, s, rng):
    return torch.from_numpy(np.stack([cv2.resize(synthetic_scene(rng), (s, s)) for _ in range(n)]).astype(np.float32)).permute(0, 3, 1, 2)

def finetune(net, x, cls, box, pts, is_bg, epochs, lr=5e-5, bs=256):
    "Fine-tune `net` (R-Net or O-Net) on crops `x`: face BCE on labelled crops, box MSE on faces and parts, points MSE on faces (O-Net)."
    g = torch.Generator().manual_seed(0); perm = torch.randperm(len(x), generator=g); va, tr = perm[:len(x) // 10], perm[len(x) // 10:]
    opt = torch.optim.Adam(net.parameters(), lr); onet = x.shape[-1] == 48
    def run(idx, train):
        net.train(train); tot = np.zeros(4)
        for b in idx.split(bs):
            with torch.set_grad_enabled(train):
                o = net(x[b].float()); c = cls[b]; lab, bx = c >= 0, c != 0
                loss = F.binary_cross_entropy(o[-1][lab].clamp(1e-6, 1 - 1e-6), c[lab].float()) + (0.5 * F.mse_loss(o[0][bx], box[b][bx]) if bx.any() else 0)
                if onet and (c == 1).any(): loss = loss + F.mse_loss(o[1][c == 1], pts[b][c == 1])
                if train: opt.zero_grad(); loss.backward(); opt.step()
            tot += [loss.item(), ((o[-1][lab] > 0.5).long() == c[lab]).float().mean().item(), (o[-1][is_bg[b]] > 0.5).float().mean().item() if is_bg[b].any() else 0, 1]
        return 'loss {:.4f}, accuracy {:.4f}, backgrounds taken for faces {:.4f}'.format(*(tot[:3] / tot[3]))
    for e in range(epochs):
        print(f'  epoch {e}: train {run(tr[torch.randperm(len(tr), generator=g)], True)}; valid {run(va, False)}', flush=True)
    return net.eval()

@torch.inference_mode()
def hard_negatives(nets, files, rng, per_photo=300):
    "What the cascade `nets` proposes on photos with no face: P-Net's boxes as 24 px crops (for R-Net), R-Net's above 0.3 as 48 px crops (for O-Net)."
    pnet, rnet, _ = nets; r, o = [], []
    for f in files:
        for side in (400, 800):
            x = (load_photo(f, side).astype(np.float32) - 127.5) / 128
            b = _proposals(pnet, x, 20, 0.6)
            if not len(b): continue
            b = square_boxes(b[:, :4])
            if len(b) > per_photo: b = b[rng.choice(len(b), per_photo, replace=False)]
            c = box_crops(x, b, 24); reg, score = (t.numpy() for t in rnet(c)); r.append(c)
            keep = score > 0.3
            if keep.any(): o.append(box_crops(x, square_boxes(_refine(b[keep], reg[keep])), 48))
    return {24: torch.cat(r) if r else torch.zeros(0, 3, 24, 24), 48: torch.cat(o) if o else torch.zeros(0, 3, 48, 48)}

def main(src, out, n=8000, epochs=2):
    rng = np.random.default_rng(1); torch.manual_seed(0)
    data = face_samples(src, n, rng); train_bg, held_out = background_files()
    print(f'{len(data[24]["x"])} face-photo crops; {len(train_bg)} background photos; held out for false faces: {[short(f) for f in held_out]}', flush=True)
    nets, hard = [load_mtcnn_net(n) for n in ('pnet', 'rnet', 'onet')], {24: torch.zeros(0, 3, 24, 24), 48: torch.zeros(0, 3, 48, 48)}
    for rnd in (1, 2):
        if rnd == 2: hard = hard_negatives(nets, train_bg, rng); print(f'hard negatives: {len(hard[24])} for R-Net, {len(hard[48])} for O-Net', flush=True)
        for s, i, name in ((24, 1, 'rnet'), (48, 2, 'onet')):
            d = data[s]; bg = torch.cat([background_crops(train_bg, 400, s, rng), synthetic_crops(20000, s, rng), hard[s]])
            x = torch.cat([d['x'], bg.half()]); cls = torch.cat([d['cls'], torch.zeros(len(bg), dtype=torch.long)])
            box = torch.cat([d['box'], torch.zeros(len(bg), 4)]); pts = torch.cat([d['pts'], torch.zeros(len(bg), 10)])
            is_bg = torch.arange(len(x)) >= len(d['x'])
            print(f'round {rnd}, {name}: {len(d["x"])} face-photo crops, {len(bg)} negatives', flush=True)
            nets[i] = finetune(nets[i], x, cls, box, pts, is_bg, epochs); del x
        torch.save({'rnet': nets[1].state_dict(), 'onet': nets[2].state_dict()}, out)

def recall_photos(src, n) -> list:
    "(mask, photo) for N PrivateTest faces (seeded) as tools/research/detector_recall.py makes them: bare, under grey and under each mask type."
    from masked_emotions.masking import MASK_TYPES, item_seed
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "research")); from detector_recall import photo_of  # the same photos
    _, faces = split_faces(src); pick = np.random.default_rng(0).choice(len(faces), n, replace=False)
    photos = []
    for i in pick:
        img, pts = photo_of(faces[i])
        photos += [('bare', img)] + [(m, draw_mask(img, pts, m, item_seed(0, int(i)))) for m in ('grey', *MASK_TYPES)]
    return photos

def evaluate(src, weights, n=100):
    "Found shares by mask, extra boxes, and false faces on held-out photos: the wheel's networks against `weights`'."
    photos = recall_photos(src, n)
    from masked_emotions.faces import MTCNN_THRESHOLDS
    held_out = background_files()[1]; tuned = torch.load(weights)
    for name, th in (('pretrained', MTCNN_THRESHOLDS['original']), ('fine-tuned', MTCNN_THRESHOLDS['original']), ('fine-tuned', MTCNN_THRESHOLDS['masks'])):
        nets = [load_mtcnn_net(k) for k in ('pnet', 'rnet', 'onet')]
        if name == 'fine-tuned': nets[1].load_state_dict(tuned['rnet']); nets[2].load_state_dict(tuned['onet'])
        found, extra = {}, 0
        for m, img in photos:
            k = len(mtcnn_faces(img, thresholds=th, nets=tuple(nets))[0]); found.setdefault(m, []).append(k > 0); extra += max(0, k - 1)
        false = {short(f): len(mtcnn_faces(load_photo(f), thresholds=th, nets=tuple(nets))[0]) for f in held_out}
        print(f"{name}, thresholds {th}: found {', '.join(f'{m} {np.mean(v):.0%}' for m, v in found.items())}; extra boxes on those photos {extra}; "
              f"false faces on {len(held_out)} held-out photos with no face: {sum(false.values())} {({k: v for k, v in false.items() if v})}", flush=True)
    from masked_emotions.masking import detect_faces
    false = {short(f): len(detect_faces(load_photo(f), 'mtcnn', cnn_fallback=False)) for f in held_out}
    print(f"the package's detect_faces (bundled fine-tuned networks, boxes checked as masking._mask_checked does, no fallback): "
          f"false faces on the held-out photos {sum(false.values())} {({k: v for k, v in false.items() if v})}", flush=True)

def pnet_sweep(src, thresholds, n=100):
    "`detect_faces` as shipped (no CNN fallback) with the fine-tuned P-Net's threshold at each of `thresholds`, with and without its mirror pass: found shares and false faces."
    from masked_emotions.masking import detect_faces
    from masked_emotions.faces import MTCNN_THRESHOLDS
    photos = recall_photos(src, n)
    held_out, shipped = background_files()[1], MTCNN_THRESHOLDS['masks']
    try:
        for t, mirror in ((t, m) for t in thresholds for m in (True, False)):
            MTCNN_THRESHOLDS['masks'] = (t, *shipped[1:]); found, extra = {}, 0
            for m, img in photos:
                k = len(detect_faces(img, cnn_fallback=False, mirror=mirror)); found.setdefault(m, []).append(k > 0); extra += max(0, k - 1)
            false = {short(f): len(detect_faces(load_photo(f), cnn_fallback=False, mirror=mirror)) for f in held_out}
            bare = np.mean(found['bare'])
            print(f"P-Net {t}, {'with' if mirror else 'without'} the mirror pass: found {', '.join(f'{m} {np.mean(v):.1%}' for m, v in found.items())}; relative to bare "
                  f"{', '.join(f'{m} {np.mean(v) / bare:.1%}' for m, v in found.items() if m != 'bare')}; "
                  f"extra boxes on those {len(photos)} photos {extra}; false faces on {len(held_out)} held-out photos {sum(false.values())} {({k: v for k, v in false.items() if v})}", flush=True)
    finally: MTCNN_THRESHOLDS['masks'] = shipped

def bundle(weights):
    "OUT.pt's two networks as the package's `mtcnn_masks.safetensors` (keys rnet.* and onet.*)."
    from safetensors.torch import save_file
    from masked_emotions.faces import mtcnn_masks_path
    sd = torch.load(weights); save_file({f'{n}.{k}': v.contiguous() for n in ('rnet', 'onet') for k, v in sd[n].items()}, mtcnn_masks_path())
    print('wrote', mtcnn_masks_path())

if __name__ == '__main__':
    if len(sys.argv) < 3: sys.exit(__doc__)
    if '--evaluate' in sys.argv: evaluate(sys.argv[1], sys.argv[2], *(int(v) for v in sys.argv[4:5]))
    elif '--bundle' in sys.argv: bundle(sys.argv[2])
    elif '--pnet' in sys.argv:
        i = sys.argv.index('--pnet'); pnet_sweep(sys.argv[1], [float(v) for v in sys.argv[i + 1].split(',')], *(int(v) for v in sys.argv[i + 2:i + 3]))
    else: main(sys.argv[1], sys.argv[2], *(int(v) for v in sys.argv[3:5]))
