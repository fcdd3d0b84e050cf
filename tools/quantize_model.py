"""Quantise the bundled accurate model to 8-bit integers: the package's `int8` model (`predict(..., model='int8')`);
with --fast, the package's `fast_int8` model, run on each face and its mirror image: by default quantised from the
bundled fast model; the bundled one is a wide network distilled from the accurate model (`--fast --of runs/wfast/best.json`).

    python tools/quantize_model.py FER2013 [--fast] [--matrix] [--dest DIR/NAME] [--of CARD]

Static quantisation with ONNX Runtime (`pip install onnxruntime`): the accurate ensemble exported to ONNX, QDQ
format, weights int8 per output channel with `reduce_range` (7-bit weights), activations uint8, min-max ranges
calibrated on 512 Training faces of FER2013 (seeded), a quarter each bare, grey, surgical and cloth (kn95 stays held
out, as in training), each in the views the model is run on. `reduce_range` because CPUs without VNNI (AVX2 only) multiply
uint8 by int8 in 16-bit sums that saturate: without it this model lost 6 points on such a CPU.
Writes masked_emotions/assets/int8_model.onnx and int8_model.json (the accurate model's card, the ONNX file's name
and how it was made; with --fast, fast_int8_model.*: the float32 model's card with `tta` on and `FAST_TTA_ZOOMS`, its
views the face and its mirror image), or DIR/NAME.onnx and .json with --dest. The card keeps its source's mask fields, `mask.draw_over_masks` said explicitly. With --matrix, also the
evaluation matrix of the int8 model on all PrivateTest faces (bare and under each mask type, through `predict`, as
`masked_emotions_analyze --matrix` measures it) into its card, printed beside the accurate model's. With --of, the float32 model at CARD (a trained model's card) is quantised instead of the
bundled one, in the same views (--fast: the face and its mirror image).
"""
import sys, json, hashlib, tempfile, datetime
from pathlib import Path
import numpy as np, pandas as pd, torch
from masked_emotions.core import atomic_path
from masked_emotions.models import default_model_card, fast_model_card, int8_model_card, fast_int8_model_card, load_model, read_card, draws_over_masks, _onnx_bytes, normalised_faces, tta_views
from masked_emotions.analysis import split_faces, matrix_faces, mask_matrix, matrix_table, card_columns
from masked_emotions.masking import fer_landmarks

FAST_TTA_ZOOMS = [1]  # the fast int8 model's views: the face and its mirror image (twice the work of none, half of the card's zooms)
CALIBRATION = dict(split='Training', n=512, seed=1, masks=('unmasked', 'grey', 'surgical', 'cloth'), mask_seed=5)

def views(faces, card) -> np.ndarray:
    "`faces` with their TTA views, as `face_probs` feeds them to the network."
    return torch.cat(tta_views(normalised_faces(faces, card), card)).numpy()

def calibration_faces(src) -> np.ndarray:
    "The calibration faces: `CALIBRATION['n']` Training faces, each quarter under one of `CALIBRATION['masks']`."
    c = CALIBRATION; items, faces = split_faces(src, c['split'])
    pick = np.random.default_rng(c['seed']).choice(len(faces), min(c['n'], len(faces)), replace=False)
    f, pts, idx = faces[pick], fer_landmarks(faces[pick]), items['index'].values[pick]
    k = len(c['masks'])
    return np.concatenate([matrix_faces(f[i::k], pts[i::k], m, c['mask_seed'], idx[i::k]) for i, m in enumerate(c['masks'])])

def quantize(src, dest=None, fast:bool=False, of=None) -> Path:
    "Write the int8 ONNX file of `of` (default: the bundled accurate or, `fast`, fast model) and its card as `dest`.onnx and .json (default: the package's int8 or fast_int8 model); return the card's path."
    card_path = (fast_int8_model_card() if fast else int8_model_card()) if dest is None else Path(dest).with_suffix('.json')
    from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType, CalibrationMethod
    source = Path(of) if of is not None else fast_model_card() if fast else default_model_card()
    net, card = load_model(source)
    if fast: card = dict(card, tta=True, tta_zooms=FAST_TTA_ZOOMS)
    card = dict(card, mask=dict(card.get('mask', {}), draw_over_masks=draws_over_masks(card)))  # served as its source was (a run's card may leave it unsaid)
    batches = [views(b, card) for b in np.array_split(calibration_faces(src), 8)]
    class Reader(CalibrationDataReader):
        def __init__(self): self.it = iter(batches)
        def get_next(self): b = next(self.it, None); return None if b is None else {'faces': b}
    onnx = card_path.with_suffix('.onnx')
    with tempfile.TemporaryDirectory() as d:  # the float32 export and ONNX Runtime's own files go with it
        tmp = Path(d); (tmp/'f32.onnx').write_bytes(_onnx_bytes(net, card))
        quantize_static(str(tmp/'f32.onnx'), str(tmp/'int8.onnx'), Reader(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax)
        with atomic_path(onnx) as p: p.write_bytes((tmp/'int8.onnx').read_bytes())
    weights = source.with_suffix('.safetensors')
    out = {k: v for k, v in card.items() if k not in ('weights', 'metrics', 'reproduce', 'averaged_from', 'started_from', 'command', 'gap_to_accurate')}
    out.update(onnx=onnx.name, created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
               quantized=dict(of=f'{source.name if of is None else of} ({weights.name} sha256 {hashlib.sha256(weights.read_bytes()).hexdigest()[:16]})',
                              **({'of_made_by': card['command']} if of is not None and 'command' in card else {}),
                              method='ONNX Runtime quantize_static: QDQ, int8 weights per channel with reduce_range, uint8 activations, min-max',
                              calibration=dict(CALIBRATION, source=str(src)), command=f'python tools/quantize_model.py {src}' + (' --fast' if fast else '') + (f' --of {of}' if of is not None else '')))
    with atomic_path(card_path) as p: p.write_text(json.dumps(out, indent=2))
    return card_path

def card_metrics(private:dict) -> dict:
    "A card's metrics from its PrivateTest matrix columns: the matrix, and the grey column as the headline, as the other bundled cards have them."
    return {'matrix': {'PrivateTest': private}, 'PrivateTest': dict(private['grey'], mask='grey')}

def matrix(src, card_path, fast:bool=False) -> pd.DataFrame:
    "The PrivateTest matrix of the int8 model at `card_path`, written into its card; printed beside the accurate (and, `fast`, the fast) model's card."
    models = {'fast_int8' if fast else 'int8': card_path}
    mx = mask_matrix(models, src)  # through predict, as users get it
    card = read_card(card_path)
    card['metrics'] = card_metrics(card_columns(mx))
    with atomic_path(card_path) as p: p.write_text(json.dumps(card, indent=2))
    rows = []
    for name, c in (('accurate', default_model_card()), *((('fast', fast_model_card()),) if fast else ())):
        acc = read_card(c)['metrics']['matrix']['PrivateTest']
        rows += [dict(model=name, mask=m, accuracy=acc[m]['accuracy'], macro_f1=acc[m]['macro_f1'], held_out=acc[m]['held_out']) for m in mx['mask']]
    both = pd.concat([pd.DataFrame(rows), mx[['model', 'mask', 'accuracy', 'macro_f1', 'held_out']]], ignore_index=True)
    print(matrix_table(both).to_string()); print(matrix_table(both, 'macro_f1').to_string())
    return mx

if __name__ == '__main__':
    if len(sys.argv) < 2 or not Path(sys.argv[1]).exists(): sys.exit(__doc__)
    opt = lambda o: sys.argv[sys.argv.index(o) + 1] if o in sys.argv else None
    dest, fast, of = opt('--dest'), '--fast' in sys.argv, opt('--of')
    if of is not None and not Path(of).is_file(): sys.exit(f'quantize_model.py: --of {of}: no such model card')
    card_path = quantize(sys.argv[1], dest, fast, of); print('wrote', card_path, flush=True)
    if '--matrix' in sys.argv: matrix(sys.argv[1], card_path, fast)
