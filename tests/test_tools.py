"The release and research tools in tools/, run as a maintainer runs them, on tiny models."
import json, shutil, subprocess, sys
from pathlib import Path
import cv2, numpy as np, pytest, torch
from safetensors.torch import load_file
from conftest import run

TOOLS = Path(__file__).parent.parent / 'tools'


def tool(name, *args, cwd=None):
    return run(sys.executable, TOOLS / f'{name}.py', *args, cwd=cwd)


@pytest.fixture
def two_models(tmp_path):
    "Two untrained emotion_cnn networks saved as models, with a card as training writes it."
    from masked_emotions.core import EMOTIONS
    from masked_emotions.models import emotion_cnn, save_model
    card = dict(arch='emotion_cnn', img_size=48, n_in=1, classes=list(EMOTIONS), normalize=dict(mean=[0.5], std=[0.25]), tta=False, metrics={})
    torch.manual_seed(0)
    return [save_model(emotion_cnn().eval(), tmp_path / name / 'best', card) for name in ('runa', 'runb')]


def test_split_ensemble_gives_back_its_members(two_models, tmp_path):
    from masked_emotions.models import load_model, face_probs
    r = run('masked_emotions_average', *two_models, '--model_dir', tmp_path / 'ens', '--ensemble', '--member_weights', '3,2')
    assert r.returncode == 0, r.stderr
    s = tool('split_ensemble', tmp_path / 'ens', tmp_path / 'members')
    assert s.returncode == 0, s.stderr
    assert sorted(p.name for p in (tmp_path / 'members').iterdir()) == ['runab.json', 'runab.safetensors', 'runbb.json', 'runbb.safetensors']
    for src, name in zip(two_models, ('runab', 'runbb')):  # bit for bit the members' own weights
        a, b = load_file(str(src.with_suffix('.safetensors'))), load_file(str(tmp_path / 'members' / f'{name}.safetensors'))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    faces = np.random.default_rng(0).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    ens, ens_card = load_model(tmp_path / 'ens')
    members = [load_model(tmp_path / 'members' / f'{n}.json') for n in ('runab', 'runbb')]
    parts = [face_probs(net, faces, card, tta=False) for net, card in members]
    assert np.allclose(face_probs(ens, faces, ens_card, tta=False), (3 * parts[0] + 2 * parts[1]) / 5, atol=1e-5)
    single = tool('split_ensemble', two_models[0], tmp_path / 'x')
    assert single.returncode == 1 and 'is a single emotion_cnn, not an ensemble' in single.stderr
    card = json.loads((tmp_path / 'ens' / 'best.json').read_text())  # a bundled ensemble's card says how it was made
    (tmp_path / 'ens' / 'best.json').write_text(json.dumps(dict(card, reproduce='masked_emotions_average runs/a runs/b')))
    again = tool('split_ensemble', (tmp_path / 'ens').resolve(), (tmp_path / 'again').resolve(), cwd=tmp_path)  # absolute paths...
    assert again.returncode == 0, again.stderr
    made = json.loads((tmp_path / 'again' / 'runab.json').read_text())['reproduce']
    assert made == 'masked_emotions_average runs/a runs/b && python tools/split_ensemble.py ens again'  # ...written as relative ones


def test_bundle_model_into_a_folder(fer_folder, tmp_path):
    train = run('masked_emotions_train', '--data_loc', fer_folder, '--num_epochs', '1', '--batch_size', '16', '--model_dir', tmp_path / 'run')
    assert train.returncode == 0, train.stderr
    b = tool('bundle_model', tmp_path / 'run', fer_folder, '--assets', tmp_path / 'assets')
    assert b.returncode == 0, b.stderr
    card = json.loads((tmp_path / 'assets' / 'default_model.json').read_text())
    preds = __import__('pandas').read_csv(tmp_path / 'run' / 'bundled_predictions.csv')
    assert card['metrics']['PrivateTest']['accuracy'] == round(float((preds.true == preds.predicted).mean()), 4)
    assert card['reproduce'].startswith('masked_emotions_mask ../shared/data/fer2013 work/masked && masked_emotions_train ')
    assert (tmp_path / 'assets' / 'default_model.safetensors').read_bytes() == (tmp_path / 'run' / 'best.safetensors').read_bytes()
    again = tool('bundle_model', tmp_path / 'run', fer_folder, '--assets', tmp_path / 'assets')  # no better than what is bundled: refused
    assert again.returncode == 1 and 'do not beat the bundled model' in again.stderr


def test_bundle_model_judges_a_model_by_its_worst_served_column():
    "Every column counts, bare faces included: the worst is the lowest of them."
    bundle_model = load_tool('bundle_model')
    col = lambda a: dict(accuracy=a, macro_f1=a, held_out=False)
    served = dict(unmasked=col(.61), grey=col(.60), surgical=col(.58), cloth=col(.57), kn95=col(.59))
    assert bundle_model.worst(served) == .57
    assert bundle_model.worst(dict(served, unmasked=col(.55))) == .55


def test_bundle_model_masks_data_first_only_when_a_command_reads_it(tmp_path):
    bundle_model = load_tool('bundle_model')
    run_dir = tmp_path / 'runs' / 'r'; run_dir.mkdir(parents=True)
    for data, masked in (('../shared/data/fer2013', False), (str(tmp_path / 'masked'), True)):  # masks drawn on the fly; a masked copy
        (run_dir / 'settings.json').write_text(json.dumps(dict(command=f'masked_emotions_train --data_loc {data} --model_dir {run_dir}')))
        made = bundle_model.reproduce(run_dir, str(tmp_path / 'masked'))
        assert made.startswith('masked_emotions_mask ../shared/data/fer2013 work/masked && ') == masked, made
        assert made.endswith('--model_dir runs/r') and ('--data_loc work/masked' in made) == masked, made


@pytest.mark.parametrize('name', ['bundle_model', 'split_ensemble', 'research/selection_cv', 'research/tta_views', 'research/detector_recall', 'finetune_face_detector',
                                  'quantize_model', 'research/detector_passes', 'research/grey_cover', 'research/ensemble_candidates', 'measure_bundled', 'landmark_error'])
def test_tools_explain_themselves(name):
    r = tool(name)
    assert r.returncode != 0 and f'python tools/{name}.py' in r.stderr and 'Traceback' not in r.stderr, r.stderr


def load_tool(name):
    import importlib.util
    spec = importlib.util.spec_from_file_location(name, TOOLS / f'{name}.py'); m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
    return m


def test_selection_cv_scores_on_the_held_out_half():
    cv = load_tool('research/selection_cv')
    rng = np.random.default_rng(0)
    y = rng.integers(0, 7, 200)
    right = np.eye(7)[y] * 0.9 + 0.1 / 7  # always right
    noise = rng.dirichlet(np.ones(7), 200)  # right about one time in seven
    res = cv.cv_table([noise, right], y, splits=3)
    assert set(res) == set(cv.SETTINGS) and all(len(r) == 6 for r in res.values())  # 3 splits, both ways
    for setting, r in res.items(): assert [a for a, _ in r] == [1.0] * 6 and [n for _, n in r] == [1] * 6, setting  # only the right model chosen
    res = cv.cv_table([noise, noise[::-1]], y, splits=2)
    assert all(a < 0.4 for r in res.values() for a, _ in r)  # noise stays noise on faces it was not chosen on
    assert 'rounds 1, max_models None minus rounds 10' in cv.report(res)


def test_tta_views_move_the_face():
    tv = load_tool('research/tta_views')
    x = torch.zeros(1, 1, 48, 48); x[..., 20, 20] = 1
    assert torch.equal(tv.VIEWS['face'](x), x)
    assert tv.VIEWS['right2'](x)[0, 0, 20, 18] == 1 and tv.VIEWS['down2'](x)[0, 0, 18, 20] == 1  # the window moves right (down) 2 px: the face moves left (up)
    r = tv.VIEWS['rot+5'](x); assert r.shape == x.shape and abs(float(r.sum()) - 1) < 0.1
    assert len(tv.MIRRORED(list(tv.VIEWS))) == 18 and tv.AVERAGES['all 18 views'] == tv.MIRRORED(tv.VIEWS)


def test_finetune_face_detector_labels_its_crops():
    import numpy as np
    m = load_tool('finetune_face_detector'); rng = np.random.default_rng(0)
    face = np.array([100., 80, 200, 180])
    crops, labels = m.crops_around(face, 400, 300, rng)
    assert sorted(labels.tolist()) == [-1, -1, 0, 0, 0, 1, 1, 1]
    for c, l in zip(crops, labels):  # faces overlap the face box most, part faces less, negatives least
        o = m.iou(c, face)
        assert (o >= 0.65) if l == 1 else (0.4 <= o < 0.65) if l == -1 else (o < 0.3), (c, l, o)
    scene = m.synthetic_scene(rng)
    assert scene.ndim == 3 and scene.shape[2] == 3 and scene.min() >= -1 and scene.max() <= 1


def test_finetune_face_detector_mines_hard_negatives(tmp_path):
    import numpy as np, cv2
    from masked_emotions.core import example_photo
    from masked_emotions.faces import mtcnn_nets
    m = load_tool('finetune_face_detector'); rng = np.random.default_rng(0)
    blank = tmp_path/'blank.png'; cv2.imwrite(str(blank), np.full((200, 200, 3), 128, np.uint8))  # nothing to propose
    assert [len(v) for v in m.hard_negatives(mtcnn_nets('original'), [blank], rng).values()] == [0, 0]
    hard = m.hard_negatives(mtcnn_nets('original'), [example_photo()], rng, per_photo=50)  # P-Net proposes plenty here
    assert hard[24].shape[1:] == (3, 24, 24) and hard[48].shape[1:] == (3, 48, 48)
    assert 0 < len(hard[24]) <= 100 and len(hard[48]) <= len(hard[24])  # at most 50 per photo size; O-Net gets R-Net's survivors
    assert hard[24].abs().max() <= 1


def test_finetune_face_detector_holds_out_its_false_face_photos():
    pytest.importorskip('skimage')
    m = load_tool('finetune_face_detector')
    train, held_out = m.background_files()
    assert held_out and not set(train) & set(held_out)
    assert not any(w in f for f in train + held_out for w in m.WITH_FACES)


@pytest.mark.parametrize('fast', [False, True])
def test_quantize_model_writes_a_model_that_runs(fer_folder, tmp_path, fast):
    "The int8 and fast_int8 models' recipe, calibrated on the miniature data set, written beside the test: an ONNX model predict can load."
    pytest.importorskip('onnxruntime')
    from masked_emotions.models import int8_model_card, fast_int8_model_card, default_model_card, fast_model_card
    bundled = [c().read_bytes() for c in (int8_model_card, fast_int8_model_card)]
    r = tool('quantize_model', fer_folder, '--dest', tmp_path / 'q' / 'int8', '--matrix', *(['--fast'] if fast else []))
    assert r.returncode == 0, r.stderr
    assert [c().read_bytes() for c in (int8_model_card, fast_int8_model_card)] == bundled  # --dest leaves the bundled models alone, --matrix included
    made = json.loads((tmp_path / 'q' / 'int8.json').read_text())
    assert (made['arch'], made['tta'], made.get('tta_zooms')) == (('emotion_cnn', True, [1]) if fast else ('ensemble', True, [1, 1.05]))
    assert made['quantized']['of'].startswith('fast_model.json' if fast else 'default_model.json')
    assert made['mask'] == dict(json.loads((fast_model_card() if fast else default_model_card()).read_text())['mask'], draw_over_masks=True)  # served as its source
    assert ('fast_int8' in r.stdout and 'fast ' in r.stdout) == fast  # the matrix beside the fast model's too
    assert json.loads((tmp_path / 'q' / 'int8.json').read_text())['metrics']['PrivateTest']['mask'] == 'grey'
    from masked_emotions.models import load_model, face_probs, OnnxNet
    card = json.loads((tmp_path / 'q' / 'int8.json').read_text())
    assert card['onnx'] == 'int8.onnx' and card['quantized']['calibration']['masks'] == ['unmasked', 'grey', 'surgical', 'cloth']
    net, card = load_model(tmp_path / 'q' / 'int8.json')
    assert isinstance(net, OnnxNet)
    p = face_probs(net, np.random.default_rng(0).integers(0, 256, (3, 48, 48), dtype=np.uint8), card, backend=None)
    assert p.shape == (3, 7) and np.allclose(p.sum(1), 1, atol=1e-3)


def test_quantize_model_of_a_card(fer_folder, tmp_path):
    "--of quantises the float32 model at a card instead of the bundled one; a card that is not there is named."
    pytest.importorskip('onnxruntime')
    from masked_emotions.models import fast_model_card, load_model, face_probs
    r = tool('quantize_model', fer_folder, '--dest', tmp_path / 'q', '--of', tmp_path / 'nope.json')
    assert r.returncode != 0 and f'--of {tmp_path / "nope.json"}: no such model card' in r.stderr and not (tmp_path / 'q.onnx').exists()
    r = tool('quantize_model', fer_folder, '--dest', tmp_path / 'q', '--of', fast_model_card())
    assert r.returncode == 0, r.stderr
    made = json.loads((tmp_path / 'q.json').read_text())
    assert (made['arch'], made['tta']) == ('emotion_cnn', False)  # the card's own views without --fast: the fast model has none
    assert made['quantized']['of'].startswith(f'{fast_model_card()} (') and made['quantized']['command'].endswith(f'--of {fast_model_card()}')
    assert made['quantized']['of_made_by'] == json.loads(fast_model_card().read_text())['command']  # how the float32 model was trained
    from masked_emotions.analysis import split_faces
    _, faces = split_faces(fer_folder, 'PrivateTest')
    (n8, c8), (nf, cf) = load_model(tmp_path / 'q.json'), load_model('fast')
    assert np.abs(face_probs(n8, faces, c8, backend=None) - face_probs(nf, faces, cf, backend=None)).max() < 0.1  # the same network, quantised


def test_detector_photos_are_the_recall_tools(fer_folder):
    "The fine-tuning tool's --evaluate and --pnet score the photos tools/detector_recall.py makes: each face bare, then under grey and each mask type."
    from masked_emotions.masking import MASK_TYPES
    ft = load_tool('finetune_face_detector')
    photos = ft.recall_photos(fer_folder, 2)
    assert [m for m, _ in photos] == 2 * ['bare', 'grey', *MASK_TYPES]
    assert all(p.shape == photos[0][1].shape and p.dtype == np.uint8 for _, p in photos)
    assert not np.array_equal(photos[0][1], photos[1][1])  # the mask is drawn


def test_grey_cover_hides_the_whole_mask_or_only_the_polygon(fer_folder):
    grey_cover = load_tool('research/grey_cover')
    from masked_emotions.analysis import split_faces
    from masked_emotions.masking import fer_landmarks, draw_mask, random_look, mask_outline
    _, faces = split_faces(fer_folder, 'PrivateTest')
    face, look = faces[0], random_look('cloth', 3)
    pts = fer_landmarks(face[None])[0]
    worn = draw_mask(face, pts, look)
    inside = cv2.fillPoly(np.zeros_like(face), [np.round(mask_outline(pts, look)).astype(np.int32)], 1).astype(bool)
    inside &= ~cv2.dilate(cv2.Canny(inside.astype(np.uint8) * 255, 1, 1), np.ones((3, 3), np.uint8)).astype(bool)  # not the anti-aliased edge
    whole, polygon = grey_cover.cover(worn, pts, 'outline', look), grey_cover.cover(worn, pts, 'polygon', look)
    assert inside.sum() > 50 and (whole[inside] == 167).all()  # every pixel of the mask grey
    assert (polygon == draw_mask(worn, pts, 'grey')).all() and (polygon[inside] != 167).any()  # the polygon leaves some of the cloth
    with pytest.raises(ValueError, match="unknown cover 'all'"): grey_cover.cover(worn, pts, 'all', look)
    r = tool('research/grey_cover', fer_folder, 'PrivateTest', 'kn95')
    assert r.returncode == 0, r.stderr
    rows = [l for l in r.stdout.splitlines() if l.startswith('kn95, grey over it')]
    assert [l.split('(')[1].split(')')[0] for l in rows] == list(grey_cover.COVERS)
    assert all(0 <= float(v) <= 1 for l in rows for v in l.split()[-3::2])  # accurate, fast


def test_benchmark_speed_ab_needs_two_models():
    r = tool('benchmark_speed', '--ab', 'fast')
    assert r.returncode != 0 and 'python tools/benchmark_speed.py --ab' in r.stderr and 'Traceback' not in r.stderr, r.stderr


@pytest.mark.parametrize('args', [['--help'], ['--quik']])
def test_benchmark_speed_explains_itself_instead_of_running(args):
    r = tool('benchmark_speed', *args)  # it ran the whole benchmark (minutes) on any option it did not know
    assert r.returncode != 0 and 'python tools/benchmark_speed.py [--quick]' in r.stderr and 'faces/s' not in r.stdout, r.stderr


def test_ensemble_candidates_score_what_average_makes(two_models, fer_folder, tmp_path):
    "The tool's cached probabilities are each network's, and its score of a weighted ensemble is that of the ensemble masked_emotions_average makes."
    import re
    from masked_emotions.models import load_model, face_probs
    r = tool('research/ensemble_candidates', fer_folder, 'cache', 'runa', 'runb', '--ensembles', 'runa_best,runb_best:3', '--splits', 'PublicTest', cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    ec = load_tool('research/ensemble_candidates')
    columns = ec.split_columns(fer_folder, ['PublicTest']); y, xs = columns['PublicTest']
    assert list(xs) == ['grey', 'surgical+grey', 'cloth+grey', 'kn95+grey']
    for name in ('runa', 'runb'):
        net, card = load_model(tmp_path / name)
        cached = np.load(tmp_path / 'cache' / f'{name}_best.npz')
        assert str(cached['digest']) == ec.network_digest(tmp_path / name / 'best.json')
        for m, x in xs.items(): assert np.allclose(cached[f'PublicTest/{m}'], face_probs(net, x, dict(card, **ec.VIEWS), True), atol=1e-5)
    a = run('masked_emotions_average', tmp_path / 'runa', tmp_path / 'runb', '--ensemble', '--member_weights', '1,3', '--model_dir', tmp_path / 'ens')
    assert a.returncode == 0, a.stderr
    net, card = load_model(tmp_path / 'ens')
    printed = r.stdout.splitlines()[-1]
    assert printed.startswith('runa_best,runb_best:3: PublicTest '), r.stdout
    for m, x in xs.items():
        acc = 100 * (np.array(card['classes'])[face_probs(net, x, dict(card, **ec.VIEWS), True).argmax(1)] == y).mean()
        assert re.search(rf' {re.escape(m)} ([0-9.]+)', printed).group(1) == f'{acc:.2f}'
    p = lambda happy: np.tile(np.eye(7)[3] * happy + np.eye(7)[4] * (1 - happy), (2, 1))  # two faces, happy or sad
    probs, columns = {'a': {'PublicTest/grey': p(0.6)}, 'b': {'PublicTest/grey': p(0.3)}}, {'PublicTest': (np.array(['happy', 'happy']), {'grey': None})}
    assert [ec.ensemble_accuracy(spec, probs, columns, card['classes'])['PublicTest']['grey'] for spec in ('a,b', 'a:3,b')] == [0, 100]  # the weights count
    bad = tool('research/ensemble_candidates', fer_folder, 'cache', 'runa', '--ensembles', 'runa_best,runc_best', '--splits', 'PublicTest', cwd=tmp_path)
    assert bad.returncode == 1 and 'runc_best not among the networks given (runa_best)' in bad.stderr and 'Traceback' not in bad.stderr, bad.stderr
    # the cache is not reused for other weights, nor when it lacks a split asked for
    shutil.copy(tmp_path / 'runa' / 'best.safetensors', tmp_path / 'runb' / 'best.safetensors')
    again = tool('research/ensemble_candidates', fer_folder, 'cache', 'runa', 'runb', '--splits', 'PublicTest,PrivateTest', cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    a, b = (np.load(tmp_path / 'cache' / f'{n}_best.npz') for n in ('runa', 'runb'))
    for k in ('PublicTest/grey', 'PrivateTest/cloth+grey'): assert np.allclose(a[k], b[k], atol=1e-6), k


def test_a_fast_models_reproduce_remakes_the_model_it_started_from(tmp_path):
    "A fast model distilled from an earlier fast model: its commands are the accurate model's, that earlier model's, then its own."
    bm = load_tool('bundle_model')
    for name, s in {'acc': {'command': 'train acc'}, 'acc0': {'command': 'train acc0 && python tools/bundle_model.py runs/acc0 x --matrix'},
                    'fast1': {'weights': str(tmp_path / 'acc'), 'teacher': str(tmp_path / 'acc0'), 'command': 'train fast1'},
                    'fast2': {'weights': str(tmp_path / 'fast1' / 'best.json'), 'teacher': str(tmp_path / 'acc'), 'command': 'train fast2'}}.items():
        (tmp_path / name).mkdir(); (tmp_path / name / 'settings.json').write_text(json.dumps(s))
    made = bm.fast_reproduce(tmp_path / 'fast2', str(tmp_path), 'train acc && bundle acc', 'train fast2 --model_dir runs/fast2')
    assert made == 'train acc && bundle acc && train acc0 && train fast1 && train fast2 --model_dir runs/fast2'  # acc0's bundling left out


def test_bundling_an_accurate_model_measures_the_fast_ones_gap_again(tmp_path, monkeypatch):
    bm = load_tool('bundle_model')
    col = lambda acc: {'grey': dict(accuracy=acc), 'kn95+grey': dict(accuracy=acc - 0.02)}
    cards = {'default_model': dict(metrics=dict(matrix=dict(PublicTest=col(0.62), PrivateTest=col(0.63)))),
             'fast_model': dict(tta=False, metrics=dict(matrix=dict(PublicTest=col(0.60), PrivateTest=col(0.605)), gap_to_accurate={'old': 1}))}
    for name, c in cards.items(): (tmp_path / f'{name}.json').write_text(json.dumps(c))
    monkeypatch.setattr(bm, 'default_model_card', lambda: tmp_path / 'default_model.json'); monkeypatch.setattr(bm, 'fast_model_card', lambda: tmp_path / 'fast_model.json')
    bm.refresh_fast_gap()
    fast = json.loads((tmp_path / 'fast_model.json').read_text())
    assert fast['metrics']['gap_to_accurate'] == {'PublicTest': {'grey': 2.0, 'kn95+grey': 2.0}, 'PrivateTest': {'grey': 2.5, 'kn95+grey': 2.5}}
    assert fast['tta'] is False and fast['metrics']['matrix'] == cards['fast_model']['metrics']['matrix']  # the rest of the card as it was


def test_a_fast_model_distilled_from_the_bundled_models_names_their_runs(tmp_path, monkeypatch):
    "Trained with --weights/--teacher on the package's own cards: the card's command names the runs that made them, which its reproduce remakes."
    bm = load_tool('bundle_model')
    monkeypatch.setattr(bm, 'ASSETS', tmp_path)
    for name, run in (('fast_model', 'kfast'), ('default_model', 'gwf')):
        (tmp_path / f'{name}.json').write_text(json.dumps({'weights': f'best.safetensors of the last run (runs/{run})'}))
    cmd = (f'masked_emotions_train --data_loc {tmp_path}/fer --weights {tmp_path}/fast_model.json --teacher {tmp_path}/default_model.safetensors '
           f'--model_dir runs/mfast --seed 1')
    assert bm.portable_command(cmd, str(tmp_path / 'fer')) == ('masked_emotions_train --data_loc ../shared/data/fer2013 --weights runs/kfast/best.json '
                                                              '--teacher runs/gwf/best.json --model_dir runs/mfast --seed 1')
    assert bm.portable_command('train --weights mine/best.json --teacher runs/acc', 'x') == 'train --weights runs/mine/best.json --teacher runs/acc'
