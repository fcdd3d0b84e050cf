"End-to-end tests: the console scripts, driven as a user would from a shell."
import json
from pathlib import Path
import numpy as np, pandas as pd, pytest, torch
from PIL import Image
from safetensors.torch import load_file
from conftest import run
from masked_emotions.core import EMOTIONS, example_photo


def test_mask_folder_then_rerun(fer_folder, tmp_path):
    r = run('masked_emotions_mask', fer_folder, tmp_path / 'masked', '--n_workers', '2')
    assert r.returncode == 0, r.stderr
    assert '63 of 63 images masked' in r.stdout
    m = pd.read_csv(tmp_path / 'masked' / 'manifest.csv')
    assert len(m) == 63 and set(m.status) == {'ok'} and set(m.landmarks) <= {'hog', 'fer_box'}
    pngs = sorted((tmp_path / 'masked').rglob('*.png'))
    assert len(pngs) == 63 and Image.open(pngs[0]).size == (48, 48)
    mtimes = [p.stat().st_mtime_ns for p in pngs]
    again = run('masked_emotions_mask', fer_folder, tmp_path / 'masked')
    assert again.returncode == 0
    assert [p.stat().st_mtime_ns for p in pngs] == mtimes  # finished images are skipped
    assert pd.read_csv(tmp_path / 'masked' / 'manifest.csv').equals(m)


def test_mask_kaggle_csv(fer_csv, tmp_path):
    r = run('masked_emotions_mask', fer_csv, tmp_path / 'masked', '--style', 'surgical')
    assert r.returncode == 0, r.stderr
    m = pd.read_csv(tmp_path / 'masked' / 'manifest.csv')
    assert len(m) == 42 and m.split.value_counts().to_dict() == {'Training': 14, 'PublicTest': 14, 'PrivateTest': 14}


@pytest.mark.parametrize('src, msg', [('nowhere', 'nowhere: no such file or folder'), ('bad.csv', 'missing column(s)')])
def test_mask_bad_source(tmp_path, src, msg):
    (tmp_path / 'bad.csv').write_text('a,b\n1,2\n')
    r = run('masked_emotions_mask', tmp_path / src, tmp_path / 'out')
    assert r.returncode != 0 and msg in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path / 'out' / 'manifest.csv').exists()


def test_train_one_epoch_then_analyze(fer_folder, tmp_path):
    run_dir = tmp_path / 'run'
    r = run('masked_emotions_train', '--data_loc', fer_folder, '--model', 'emotion_cnn', '--num_epochs', '1', '--batch_size', '8',
            '--learning_rate', '0.001', '--model_dir', run_dir, '--save_predictions', '--data_aug')
    assert r.returncode == 0, r.stderr
    settings = json.loads((run_dir / 'settings.json').read_text())
    assert settings['num_epochs'] == 1 and settings['batch_size'] == 8 and 'torch' in settings['versions']
    hist = pd.read_csv(run_dir / 'history.csv')
    assert list(hist.columns) == ['epoch', 'train_loss', 'valid_loss', 'accuracy'] and len(hist) == 1
    assert Image.open(run_dir / 'training.png').format == 'PNG'
    for name in ('best', 'final'):
        card = json.loads((run_dir / f'{name}.json').read_text())
        assert card['arch'] == 'emotion_cnn' and card['classes'] == list(EMOTIONS) and card['img_size'] == 48
        assert set(card['normalize']) == {'mean', 'std'} and card['training_data']['images']['Training'] == 21
        assert load_file(str(run_dir / f'{name}.safetensors'))
    preds = pd.read_csv(run_dir / 'test_predictions.csv')
    assert list(preds.columns) == ['file', 'true', 'predicted', *EMOTIONS] and len(preds) == 21
    assert np.allclose(preds[list(EMOTIONS)].sum(axis=1), 1, atol=1e-4)

    a = run('masked_emotions_analyze', run_dir)
    assert a.returncode == 0, a.stderr
    metrics = json.loads((run_dir / 'analysis' / 'metrics.json').read_text())
    assert metrics['accuracy'] == pytest.approx((preds.true == preds.predicted).mean())
    assert {p.name for p in (run_dir / 'analysis').glob('*.png')} == {
        'confusion.png', 'confusion_normalized.png', 'labels_true.png', 'labels_predicted.png', 'labels_true_vs_predicted.png'}

    p = run('masked_emotions_predict', '--model', run_dir, '--json')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]['faces'][0]['emotion'] in EMOTIONS

    r = run('masked_emotions_train', '--data_loc', fer_folder, '--model', 'emotion_cnn', '--num_epochs', '2', '--batch_size', '8',
            '--learning_rate', '0.001', '--model_dir', run_dir, '--resume')  # one more epoch
    assert r.returncode == 0, r.stderr
    assert pd.read_csv(run_dir / 'history.csv').epoch.tolist() == [0, 1]
    settings = json.loads((run_dir / 'settings.json').read_text())
    assert settings['resumed_at'] == [1] and settings['num_epochs'] == 2
    assert '--resume' not in settings['command'] and '--num_epochs 2' in settings['command']  # remakes the run from scratch


@pytest.mark.parametrize('args, msg', [
    (['--model', 'lenet'], "unknown model 'lenet'"),
    (['--learning_rate', '-0.1'], 'learning_rate must be positive'),
    (['--preset', 'huge'], "unknown preset 'huge'"),
    (['--resume'], 'nothing to resume'),
    (['--mixup', '-1'], 'mixup must be 0 (off) or a positive alpha'),
    (['--teacher', 'nowhere.json'], 'nowhere.json: no model card'),
    (['--teacher', 'BUNDLED', '--distill_alpha', '0'], 'distill_alpha must be in (0, 1]'),
    (['--teacher', 'BUNDLED', '--mixup', '0.4'], 'a teacher and mixup together are not supported'),
])
def test_train_bad_arguments(fer_folder, tmp_path, args, msg):
    from masked_emotions.models import default_model_card
    args = [default_model_card() if a == 'BUNDLED' else a for a in args]
    r = run('masked_emotions_train', '--data_loc', fer_folder, '--model_dir', tmp_path / 'run', *args)
    assert r.returncode != 0 and msg in r.stderr and 'Traceback' not in r.stderr
    assert not any((tmp_path / 'run').rglob('*'))  # refused before any file was written


def test_distil_from_bundled_model(fer_folder, tmp_path):
    "Distil the bundled model into a network in bfloat16: the run records the teacher and --bf16, starts from its --weights and saves float32 weights; an ensemble's weights cannot start one network."
    from masked_emotions.models import default_model_card
    bundled, run_dir = default_model_card(), tmp_path / 'kd'
    save_untrained(tmp_path, 'start')
    r = run('masked_emotions_train', '--data_loc', fer_folder, '--num_epochs', '1', '--batch_size', '8', '--learning_rate', '1e-6',
            '--weights', tmp_path / 'start.json', '--teacher', bundled, '--distill_alpha', '0.7', '--bf16', '--model_dir', run_dir)
    assert r.returncode == 0, r.stderr
    settings = json.loads((run_dir / 'settings.json').read_text())
    assert (settings['teacher'], settings['distill_alpha'], settings['temperature'], settings['bf16']) == (str(bundled), 0.7, 2.0, True)
    assert f'--teacher {bundled}' in settings['command'] and '--bf16' in settings['command']
    start, tuned = load_file(str(tmp_path / 'start.safetensors')), load_file(str(run_dir / 'final.safetensors'))
    learned = [k for k in start if 'running' not in k and 'num_batches' not in k]
    assert start.keys() == tuned.keys() and all((start[k] - tuned[k]).abs().max() < 1e-4 for k in learned)  # a step from --weights
    assert any(not start[k].equal(tuned[k]) for k in learned)  # but a step
    assert {v.dtype for k, v in tuned.items() if k in learned} == {torch.float32}
    save_untrained(tmp_path, 'other')  # an ensemble made here, whatever the bundled model is
    assert run('masked_emotions_average', tmp_path / 'start.json', tmp_path / 'other.json', '--model_dir', tmp_path / 'ens', '--ensemble').returncode == 0
    ens = tmp_path / 'ens' / 'best.json'
    r = run('masked_emotions_train', '--data_loc', fer_folder, '--num_epochs', '1', '--weights', ens, '--model_dir', tmp_path / 'no')
    assert r.returncode != 0 and f'{ens}: ensemble weights cannot start emotion_cnn' in r.stderr and 'Traceback' not in r.stderr


def test_train_missing_data(tmp_path):
    r = run('masked_emotions_train', '--data_loc', tmp_path / 'nowhere')
    assert r.returncode != 0 and 'nowhere: no such file or folder' in r.stderr and 'Traceback' not in r.stderr
    r = run('masked_emotions_train')
    assert r.returncode != 0 and '--data_loc is required' in r.stderr


def save_untrained(folder, *names):
    "Untrained emotion_cnn models with the bundled model's card, as folder/NAME.{json,safetensors}."
    from masked_emotions.models import default_model_card, emotion_cnn, save_model
    card = {k: v for k, v in json.loads(default_model_card().read_text()).items() if k != 'members'}  # the bundled model may be an ensemble
    for name in names: save_model(emotion_cnn(), folder / name, dict(card, arch='emotion_cnn'))


def test_average_two_models_then_predict(tmp_path):
    save_untrained(tmp_path, 'a', 'b')
    r = run('masked_emotions_average', tmp_path / 'a.json', tmp_path / 'b.safetensors', '--model_dir', tmp_path / 'soup')
    assert r.returncode == 0, r.stderr
    a, b, s = [load_file(str(tmp_path / f)) for f in ('a.safetensors', 'b.safetensors', 'soup/best.safetensors')]
    assert all(np.allclose(s[k].float(), (a[k].float() + b[k].float()) / 2, atol=1e-6) for k in s if s[k].is_floating_point())
    soup = json.loads((tmp_path / 'soup' / 'best.json').read_text())
    assert soup['averaged_from'] == [str(tmp_path / 'a.json'), str(tmp_path / 'b.json')] and soup['command'].startswith('masked_emotions_average ')
    p = run('masked_emotions_predict', '--model', tmp_path / 'soup', '--json')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]['faces'][0]['emotion'] in EMOTIONS


def test_ensemble_two_models_then_predict(tmp_path):
    save_untrained(tmp_path, 'a', 'b')
    r = run('masked_emotions_average', tmp_path / 'a.json', tmp_path / 'b.json', '--model_dir', tmp_path / 'ens', '--ensemble')
    assert r.returncode == 0, r.stderr
    assert 'ensemble of 2 of 2 models' in r.stdout
    a, b, e = [load_file(str(tmp_path / f)) for f in ('a.safetensors', 'b.safetensors', 'ens/best.safetensors')]
    assert sorted(e) == sorted([f'members.0.{k}' for k in a] + [f'members.1.{k}' for k in b])
    assert all(np.array_equal(e[f'members.{i}.{k}'], m[k]) for i, m in enumerate((a, b)) for k in m)
    card = json.loads((tmp_path / 'ens' / 'best.json').read_text())
    assert card['arch'] == 'ensemble' and card['members'] == [{'arch': 'emotion_cnn'}] * 2
    p = run('masked_emotions_predict', '--model', tmp_path / 'ens', '--json')
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)[0]['faces'][0]['emotion'] in EMOTIONS


def test_ensemble_of_models_that_differ_in_tta(tmp_path):
    save_untrained(tmp_path, 'a', 'b')
    card = json.loads((tmp_path / 'b.json').read_text())
    (tmp_path / 'b.json').write_text(json.dumps({k: v for k, v in dict(card, tta=False).items() if k != 'tta_zooms'}))
    a_zooms = json.loads((tmp_path / 'a.json').read_text())['tta_zooms']
    models = [tmp_path / 'a.json', tmp_path / 'b.json']
    r = run('masked_emotions_average', *models, '--model_dir', tmp_path / 'ens', '--ensemble')
    assert r.returncode != 0 and 'differ in test-time augmentation' in r.stderr and "b.json: none" in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path / 'ens').exists()
    bad = run('masked_emotions_average', *models, '--model_dir', tmp_path / 'ens', '--ensemble', '--tta', 'maybe')
    assert bad.returncode != 0 and "--tta takes yes or no, got 'maybe'" in bad.stderr and not (tmp_path / 'ens').exists()
    for choice, want in (('yes', dict(tta=True, tta_zooms=a_zooms)), ('no', dict(tta=False))):
        r = run('masked_emotions_average', *models, '--model_dir', tmp_path / choice, '--ensemble', '--tta', choice)
        assert r.returncode == 0, r.stderr
        made = json.loads((tmp_path / choice / 'best.json').read_text())
        assert {k: made[k] for k in ('tta', 'tta_zooms') if k in made} == want


@pytest.mark.parametrize('args, msg', [
    (['a.json', '--model_dir', 'one'], 'at least 2 models'),
    (['a.json', 'missing.json', '--model_dir', 'two'], 'missing.json: no model card'),
    (['a.json', 'a.json'], '--model_dir is required'),
    (['a.json', 'a.json', '--model_dir', 'two', '--greedy'], '--greedy and --data_loc go together'),
    (['a.json', 'a.json', '--model_dir', 'two', '--data_loc', 'fer'], '--greedy and --data_loc go together'),
    (['a.json', 'a.json', '--model_dir', 'two', '--greedy', '--data_loc', 'nosuchdir'], 'nosuchdir: no such file or folder'),
])
def test_average_bad_arguments(tmp_path, args, msg):
    save_untrained(tmp_path, 'a')
    r = run('masked_emotions_average', *args, cwd=tmp_path)
    assert r.returncode != 0 and msg in r.stderr and 'Traceback' not in r.stderr
    assert not (tmp_path / 'one').exists() and not (tmp_path / 'two').exists()


def test_predict_bundled_example():
    from masked_emotions.predict import predict
    r = run('masked_emotions_predict')
    assert r.returncode == 0, r.stderr
    line, = r.stdout.strip().splitlines()
    expected = predict(example_photo())[0]  # what the library says, in this process
    assert line.startswith(f"{example_photo()}: face 1 at ") and line.endswith(f"(mtcnn, bare, mask drawn): {expected['emotion']} ({expected['confidence']:.0%})"), line
    masked = run('masked_emotions_predict', str(example_photo()), '--add_mask')  # the unmasked example is masked first
    assert masked.returncode == 0 and masked.stdout.strip() == line, masked.stdout
    hog = run('masked_emotions_predict', '--detector', 'hog')  # dlib's detector, as the original project
    expected = predict(example_photo(), detector='hog')[0]
    assert hog.returncode == 0 and hog.stdout.strip().endswith(f"(hog, bare, mask drawn): {expected['emotion']} ({expected['confidence']:.0%})"), hog.stdout
    published = run('masked_emotions_predict', '--detector', 'mtcnn_original')  # MTCNN with the mtcnn wheel's weights
    expected = predict(example_photo(), detector='mtcnn_original')[0]
    assert published.returncode == 0 and published.stdout.strip().endswith(f"(mtcnn_original, bare, mask drawn): {expected['emotion']} ({expected['confidence']:.0%})"), published.stdout
    bad = run('masked_emotions_predict', '--detector', 'yolo')
    assert bad.returncode != 0 and "invalid choice: 'yolo'" in bad.stderr, bad.stderr


def test_predict_bad_files(tmp_path):
    (tmp_path / 'empty.jpg').touch()
    (tmp_path / 'text.png').write_text('not a picture')
    Image.new('RGB', (300, 300), 'white').save(tmp_path / 'blank.png')
    r = run('masked_emotions_predict', tmp_path / 'empty.jpg', tmp_path / 'text.png', tmp_path / 'blank.png', tmp_path / 'missing.jpg')
    assert r.returncode == 1 and 'Traceback' not in r.stderr
    out = r.stdout
    assert 'empty.jpg: empty file' in out and 'text.png: not an image file' in out
    assert 'blank.png: no face found' in out and 'missing.jpg: no such file' in out


def test_analyze_bad_input(tmp_path):
    r = run('masked_emotions_analyze', tmp_path)
    assert r.returncode != 0 and 'train with --save_predictions' in r.stderr and 'Traceback' not in r.stderr


def test_import_is_light():
    r = run('python', '-c', 'import sys, masked_emotions; print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "fastai", "dlib", "cv2")))')
    assert r.returncode == 0 and r.stdout.strip() == '[]'


def test_greedy_soup_on_publictest(fer_folder, tmp_path):
    save_untrained(tmp_path, 'a', 'b')
    r = run('masked_emotions_average', tmp_path / 'a.json', tmp_path / 'b.json', '--model_dir', tmp_path / 'soup', '--greedy', '--data_loc', fer_folder)
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / 'soup' / 'best.json').read_text())
    g = card['greedy']
    assert g['split'] == 'PublicTest' and sorted(t['model'] for t in g['tried']) == [str(tmp_path / 'a.json'), str(tmp_path / 'b.json')]
    assert card['averaged_from'] == [t['model'] for t in g['tried'] if t['kept']] and g['tried'][0]['kept']
    assert g['accuracy'] >= max(t['alone'] for t in g['tried'])
    assert f"average of {len(card['averaged_from'])} of 2 models, PublicTest accuracy {g['accuracy']:.4f}" in r.stdout


def test_greedy_ensemble_on_publictest(fer_folder, tmp_path):
    save_untrained(tmp_path, 'a', 'b')
    r = run('masked_emotions_average', tmp_path / 'a.json', tmp_path / 'b.json', '--model_dir', tmp_path / 'ens',
            '--greedy', '--ensemble', '--rounds', '3', '--data_loc', fer_folder)
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / 'ens' / 'best.json').read_text())
    g = card['greedy']
    assert g['method'] == 'ensemble selection' and len(g['rounds']) == 3 and g['rounds'][0]['model'] == g['tried'][0]['model']
    assert card['averaged_from'] == [t['model'] for t in g['tried'] if t['kept']]
    assert g['accuracy'] == max(r['accuracy'] for r in g['rounds']) >= max(t['alone'] for t in g['tried'])
    assert f"ensemble of {len(card['averaged_from'])} of 2 models, PublicTest accuracy {g['accuracy']:.4f}" in r.stdout
    bad = run('masked_emotions_average', tmp_path / 'a.json', tmp_path / 'b.json', '--model_dir', tmp_path / 'none',
              '--greedy', '--ensemble', '--rounds', '0', '--data_loc', fer_folder)
    assert bad.returncode != 0 and 'at least 1 round' in bad.stderr and 'Traceback' not in bad.stderr
    assert not (tmp_path / 'none').exists()


def test_bagged_ensemble_selection(fer_folder, tmp_path):
    save_untrained(tmp_path, 'a', 'b', 'c')
    models = [tmp_path / f'{m}.json' for m in 'abc']
    r = run('masked_emotions_average', *models, '--model_dir', tmp_path / 'bag', '--greedy', '--ensemble', '--bags', '4', '--data_loc', fer_folder)
    assert r.returncode == 0, r.stderr
    g = json.loads((tmp_path / 'bag' / 'best.json').read_text())['greedy']
    assert (g['method'], g['bags']) == ('bagged ensemble selection', 4) and len(g['tried']) == 3
    for args, says in ((['--greedy', '--ensemble', '--bags', '0'], 'at least 1 bag'), (['--greedy', '--bags', '2'], 'add --greedy --ensemble')):
        bad = run('masked_emotions_average', *models, '--model_dir', tmp_path / 'none', *args, '--data_loc', fer_folder)
        assert bad.returncode != 0 and says in bad.stderr and 'Traceback' not in bad.stderr, bad.stderr
        assert not (tmp_path / 'none').exists()


def test_capped_ensemble_selection(fer_folder, tmp_path):
    save_untrained(tmp_path, 'a', 'b', 'c')
    models = [tmp_path / f'{m}.json' for m in 'abc']
    r = run('masked_emotions_average', *models, '--model_dir', tmp_path / 'cap', '--greedy', '--ensemble', '--rounds', '4',
            '--max_models', '1', '--data_loc', fer_folder)
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / 'cap' / 'best.json').read_text())
    assert card['greedy']['max_models'] == 1 and len(card['averaged_from']) == 1 and card['arch'] != 'ensemble'
    assert 'ensemble of 1 of 3 models' in r.stdout
    for args, says in ((['--greedy', '--ensemble', '--max_models', '0'], 'at least 1 model'),
                       (['--greedy', '--ensemble', '--bags', '2', '--max_models', '2'], 'not a bagged one'),
                       (['--greedy', '--max_models', '2'], 'add --greedy --ensemble')):
        bad = run('masked_emotions_average', *models, '--model_dir', tmp_path / 'none', *args, '--data_loc', fer_folder)
        assert bad.returncode != 0 and says in bad.stderr and 'Traceback' not in bad.stderr, bad.stderr
        assert not (tmp_path / 'none').exists()


def _children(pid: int) -> list:
    "Pids of the live processes whose parent is `pid`."
    out = []
    for p in Path('/proc').glob('[0-9]*'):
        try:
            if int((p / 'stat').read_text().rsplit(')', 1)[1].split()[1]) == pid: out.append(int(p.name))
        except (OSError, ValueError, IndexError): pass
    return out


@pytest.mark.skipif(not Path('/proc').exists(), reason='needs /proc (Linux) to find the worker processes')
def test_mask_killed_leaves_no_worker(tmp_path):
    import os, signal, subprocess, sys, time
    from masked_emotions.core import synthetic_fer2013
    src = synthetic_fer2013(tmp_path / 'fer', per_class=120)  # 2,520 images: some seconds of work for two workers
    p = subprocess.Popen(['masked_emotions_mask', src, tmp_path / 'out', '--n_workers', '2'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(_children(p.pid)) < 2 and time.time() < deadline: time.sleep(0.1)
    workers = _children(p.pid)
    assert len(workers) >= 2, 'the masker never started its workers'
    os.kill(p.pid, signal.SIGKILL); p.wait()
    deadline = time.time() + 5
    alive = lambda: [w for w in workers if Path(f'/proc/{w}').exists() and 'Z' not in (Path(f'/proc/{w}/stat').read_text().rsplit(')', 1)[1].split()[0:1] or ['Z'])]
    while alive() and time.time() < deadline: time.sleep(0.1)
    assert alive() == [], f'workers {alive()} outlived their killed parent'
    again = run('masked_emotions_mask', src, tmp_path / 'out', '--n_workers', '2')  # and the folder resumes cleanly
    assert again.returncode == 0 and '2520 of 2520 images masked' in again.stdout, again.stderr
    assert not list((tmp_path / 'out').rglob('.*.png'))  # no temporary file left behind


def test_weighted_ensemble(tmp_path):
    from masked_emotions.models import load_model
    save_untrained(tmp_path, 'a', 'b')
    r = run('masked_emotions_average', tmp_path / 'a.json', tmp_path / 'b.json', '--model_dir', tmp_path / 'ens', '--ensemble', '--member_weights', '3,1')
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / 'ens' / 'best.json').read_text())
    assert [m['weight'] for m in card['members']] == [3, 1]
    (ens, _), (a, _), (b, _) = [load_model(p) for p in (tmp_path / 'ens', tmp_path / 'a.json', tmp_path / 'b.json')]
    x = torch.randn(4, 1, 48, 48)
    with torch.no_grad(): expected = (3 * a(x).softmax(1) + b(x).softmax(1)) / 4
    assert torch.allclose(ens(x).exp(), expected, atol=1e-5)
    for args, msg in [(['--member_weights', '3'], '1 member weights for 2 models'), (['--member_weights', '3,x'], "could not convert string to float: 'x'")]:
        bad = run('masked_emotions_average', tmp_path / 'a.json', tmp_path / 'b.json', '--model_dir', tmp_path / 'bad', '--ensemble', *args)
        assert bad.returncode != 0 and msg in bad.stderr and 'Traceback' not in bad.stderr, bad.stderr


def test_predict_fast_model_any_backend():
    from masked_emotions.predict import predict
    outs = [run('masked_emotions_predict', '--model', 'fast', '--json', '--backend', b) for b in ('torch', 'openvino', 'onnxruntime')]
    assert all(o.returncode == 0 for o in outs), [o.stderr for o in outs]
    probs = [json.loads(o.stdout)[0]['faces'][0]['probs'] for o in outs]
    expected = predict(example_photo(), model='fast', backend='torch')[0]['probs']
    for p in probs: assert np.allclose(list(p.values()), list(expected.values()), atol=1.01e-4), (p, expected)
    bad = run('masked_emotions_predict', '--backend', 'tflite')
    assert bad.returncode == 2 and 'tflite' in bad.stderr and 'Traceback' not in bad.stderr


@pytest.mark.parametrize('name,atol', [('int8', 0.05), ('fast_int8', 0.15)])
def test_predict_int8_model(name, atol):
    "A quantised model from the command line, on the CPU: close to the accurate model (int8: quantised from it; fast_int8: a network distilled from it, whose float32 weights are not shipped) with the same top emotion; torch cannot run it, and says so."
    from masked_emotions.predict import predict
    out = run('masked_emotions_predict', '--model', name, '--json')
    assert out.returncode == 0, out.stderr
    p = json.loads(out.stdout)[0]['faces'][0]['probs']
    expected = predict(example_photo(), 'accurate', backend='torch', device='cpu')[0]['probs']
    assert np.allclose(list(p.values()), list(expected.values()), atol=atol) and max(p, key=p.get) == max(expected, key=expected.get), (p, expected)
    bad = run('masked_emotions_predict', '--model', name, '--backend', 'torch')
    assert bad.returncode != 0 and 'torch cannot' in bad.stderr and 'Traceback' not in bad.stderr, bad.stderr


def test_predict_video(tmp_path):
    from masked_emotions.video import example_clip
    clip, squares = example_clip(tmp_path / 'clip.mp4', 30, mask_from=20)
    r = run('masked_emotions_predict', clip, '--model', 'fast', '--every', '2', '--out_dir', tmp_path / 'out')
    assert r.returncode == 0, r.stderr
    rows = pd.read_csv(tmp_path / 'out' / 'clip.emotions.csv')
    assert rows.frame.tolist() == list(range(30)) and set(rows.face_id) == {1}
    top = rows.emotion.value_counts()
    assert f'face 1: 30 frames, mostly {top.index[0]} ({top.iloc[0] / 30:.0%} of them)' in r.stdout, r.stdout
    assert sorted(p.name for p in (tmp_path / 'out').iterdir()) == ['clip.emotions.csv', 'clip.emotions.mp4', 'clip.emotions.png']
    (tmp_path / 'broken.mp4').write_bytes(clip.read_bytes()[:3000])
    bad = run('masked_emotions_predict', tmp_path / 'broken.mp4', '--out_dir', tmp_path / 'out2')
    assert bad.returncode == 1 and 'broken.mp4: not a readable video' in bad.stdout and 'Traceback' not in bad.stderr
    assert not (tmp_path / 'out2').exists() or not any((tmp_path / 'out2').iterdir())


def test_predict_folder_resumes(tmp_path):
    import shutil
    from masked_emotions.video import example_clip
    album = tmp_path / 'album'; album.mkdir()
    shutil.copy(example_photo(), album / 'a.jpg'); (album / 'b.jpg').write_text('not a picture')
    example_clip(album / 'clip.mp4', 12); (album / 'c.mp4').write_text('not a video either')
    r = run('masked_emotions_predict', album, '--model', 'fast', '--out_dir', tmp_path / 'videos')
    csv = tmp_path / 'album.emotions.csv'
    assert r.returncode == 1 and f'{csv}: 4 files (0 done before), 13 face rows written, 2 errors' in r.stdout and 'Traceback' not in r.stderr, r.stdout + r.stderr
    rows = pd.read_csv(csv)
    assert rows.groupby('file').size().to_dict() == {str(album / 'a.jpg'): 1, str(album / 'b.jpg'): 1, str(album / 'c.mp4'): 1, str(album / 'clip.mp4'): 12}
    assert rows.set_index('file').error[str(album / 'c.mp4')].startswith(str(album / 'c.mp4'))
    again = run('masked_emotions_predict', album, '--model', 'fast')
    assert f'{csv}: 4 files (4 done before), 0 face rows written, 0 errors' in again.stdout and again.returncode == 0
    assert len(pd.read_csv(csv)) == len(rows)


def test_original_readme_command(fer_folder, tmp_path):
    "The original README's example command, with this project's console name, one epoch on the miniature."
    import os, subprocess, torchvision
    cmd = ['masked_emotions_train', '--model', 'alexnet', '--batch_size', '24', '--learning_rate', '0.0025', '--num_epochs', '1', '--verbose',
           '--data_aug', '--save_predictions', '--data_loc', str(fer_folder)]
    env = dict(os.environ, TORCH_HOME=str(tmp_path / 'torch'), PYTHONWARNINGS='ignore')  # no cached ImageNet weights
    pre = subprocess.run(cmd + ['--pretrained', '--model_dir', str(tmp_path / 'pre')], capture_output=True, text=True, env=env)
    if pre.returncode != 0:  # offline, as CI is: one clear line, no traceback
        assert 'pretrained weights for AlexNet_Weights.IMAGENET1K_V1 must be downloaded' in pre.stderr and 'Traceback' not in pre.stderr, pre.stderr
    torch.save(torchvision.models.alexnet().state_dict(), tmp_path / 'alexnet.pth')  # ImageNet-shaped weights from a file instead
    r = run(*cmd, '--weights', tmp_path / 'alexnet.pth', '--model_dir', tmp_path / 'run')
    assert r.returncode == 0, r.stderr
    card = json.loads((tmp_path / 'run' / 'best.json').read_text())
    assert card['arch'] == 'alexnet' and (tmp_path / 'run' / 'test_predictions.csv').exists()
    vgg = run('masked_emotions_train', '--model', 'vgg', '--optimizer', 'original', '--img_size', '32', '--num_epochs', '1', '--batch_size', '16',
              '--data_loc', fer_folder, '--model_dir', tmp_path / 'vgg')
    assert vgg.returncode == 0 and json.loads((tmp_path / 'vgg' / 'best.json').read_text())['arch'] == 'vgg19_bn', vgg.stderr


def test_learner_module_runs_once(fer_folder, tmp_path):
    "python -m masked_emotions.learner trains and exits 0 (it used to run the average command too, and exit 2)."
    import sys, subprocess
    r = subprocess.run([sys.executable, '-m', 'masked_emotions.learner', '--data_loc', str(fer_folder), '--num_epochs', '1', '--batch_size', '16',
                        '--model_dir', str(tmp_path / 'run')], capture_output=True, text=True)
    assert r.returncode == 0 and (tmp_path / 'run' / 'best.json').exists(), r.stderr[-2000:]


def test_legend_csv_masked_and_trained(tmp_path):
    "The original's second data set: legend.csv (user.id,image,emotion) and images/ beside it, labels in mixed case, one contempt, one missing image."
    import cv2
    from masked_emotions.core import load_image, save_image
    root = tmp_path / 'facial_expressions'; (root / 'images').mkdir(parents=True)
    photo, rng = load_image(example_photo()), np.random.default_rng(0)
    labels = ['HAPPINESS', 'sadness', 'Anger', 'surprise', 'fear', 'disgust', 'neutral'] * 2 + ['contempt', 'happiness']
    for i in range(len(labels)):  # real-size photos of the example face: scaled, shifted, lit differently
        side = int(rng.integers(300, 420)); dx, dy = rng.integers(-20, 21, 2)
        img = cv2.resize(np.roll(photo, (int(dy), int(dx)), axis=(0, 1)), (side, side)).astype(np.float32) * rng.uniform(0.7, 1.2)
        save_image(np.clip(img, 0, 255).astype(np.uint8), root / 'images' / f'photo{i}.jpg')
    (root / 'images' / f'photo{len(labels) - 1}.jpg').unlink()  # the last row's image is missing
    pd.DataFrame({'user.id': ['jhamski'] * len(labels), 'image': [f'photo{i}.jpg' for i in range(len(labels))], 'emotion': labels}).to_csv(root / 'legend.csv', index=False)
    r = run('masked_emotions_mask', root / 'legend.csv', tmp_path / 'masked')
    assert r.returncode == 0, r.stderr
    assert '14 images; dropped 1 labelled contempt' in r.stderr and 'whose image is missing' in r.stderr and 'photo15.jpg' in r.stderr, r.stderr
    manifest = pd.read_csv(tmp_path / 'masked' / 'manifest.csv')
    assert len(manifest) == 14 and manifest.status.eq('ok').all(), manifest.status.tolist()
    assert manifest.split.value_counts().to_dict() == {'Training': 10, 'PublicTest': 3, 'PrivateTest': 1}
    faces = [load_image(tmp_path / 'masked' / f, gray=True) for f in manifest.file]
    assert all(f.shape == (48, 48) for f in faces)
    t = run('masked_emotions_train', '--data_loc', root / 'legend.csv', '--num_epochs', '1', '--batch_size', '8', '--model_dir', tmp_path / 'run')
    assert t.returncode == 0, t.stderr
    card = json.loads((tmp_path / 'run' / 'best.json').read_text())
    assert card['training_data']['images'] == {'Training': 10, 'PublicTest': 3, 'PrivateTest': 1}


def test_two_process_training_on_cpu(fer_folder, tmp_path):
    "torchrun with 2 CPU processes (gloo), through Accelerate: rank 0 alone writes and prints, and the run folder is a one-process run's."
    import importlib.util, shutil, time
    if importlib.util.find_spec('accelerate') is None: pytest.skip('accelerate is not installed (pip install accelerate; a dev requirement)')
    args = ['--data_loc', fer_folder, '--num_epochs', '2', '--batch_size', '8', '--save_predictions']
    t = time.perf_counter()
    two = run('torchrun', '--nproc_per_node', '2', '-m', 'masked_emotions.learner', *args, '--model_dir', tmp_path / 'two')
    wall = time.perf_counter() - t
    assert two.returncode == 0, two.stderr[-3000:]
    from conftest import REPORT
    REPORT.append(f'2-process CPU training (torchrun, miniature, 2 epochs): {wall:.1f} s wall')
    assert [l.split(':')[0] for l in two.stdout.splitlines() if l.startswith('epoch ')] == ['epoch 1/2', 'epoch 2/2']  # printed once, by rank 0
    one = run('masked_emotions_train', *args, '--model_dir', tmp_path / 'one')
    assert one.returncode == 0, one.stderr
    assert sorted(p.name for p in (tmp_path / 'two').iterdir()) == sorted(p.name for p in (tmp_path / 'one').iterdir())
    assert json.loads((tmp_path / 'two' / 'settings.json').read_text())['processes'] == 2
    assert json.loads((tmp_path / 'one' / 'settings.json').read_text())['processes'] == 1
    assert len(pd.read_csv(tmp_path / 'two' / 'history.csv')) == 2 and len(pd.read_csv(tmp_path / 'two' / 'test_predictions.csv')) == len(pd.read_csv(tmp_path / 'one' / 'test_predictions.csv'))
    from masked_emotions.models import load_model
    net, card = load_model(tmp_path / 'two')  # the weights of the network, not of its DDP wrapper
    assert card['metrics']['epoch'] in (1, 2)


def test_analyze_matrix_with_tta_on_and_off(fer_folder, tmp_path):
    "The evaluation matrix from the command line, for a bundled model by name, with its test-time augmentation forced on and off."
    from masked_emotions.analysis import mask_matrix
    for tta in ('on', 'off'):
        r = run('masked_emotions_analyze', 'fast', '--matrix', fer_folder, '--masks', 'unmasked,cloth', '--tta', tta, '--out', tmp_path / tta)
        assert r.returncode == 0, r.stderr
        got = pd.read_csv(tmp_path / tta / 'matrix.csv')
        assert got['mask'].tolist() == ['unmasked', 'cloth'] and (got.model == 'fast').all(), got
        want = mask_matrix({'fast': 'fast'}, fer_folder, masks=['unmasked', 'cloth'], tta=tta == 'on')
        assert np.allclose(got.accuracy, want.accuracy) and np.allclose(got.macro_f1, want.macro_f1) and np.allclose(got.masked, [0, 1])
    bad = run('masked_emotions_analyze', 'fast', '--matrix', fer_folder, '--tta', 'maybe')
    assert bad.returncode == 2 and "'maybe'" in bad.stderr and 'Traceback' not in bad.stderr


def test_analyze_matrix_on_public_test(fer_folder, tmp_path):
    "--split PublicTest scores the faces models are chosen on, not the PrivateTest faces they are reported on."
    from masked_emotions.analysis import mask_matrix
    r = run('masked_emotions_analyze', 'fast', 'fast_int8', '--matrix', fer_folder, '--masks', 'grey', '--split', 'PublicTest', '--out', tmp_path)
    assert r.returncode == 0, r.stderr
    assert 'PublicTest faces' in r.stdout and 'PrivateTest' not in r.stdout
    got = pd.read_csv(tmp_path / 'matrix.csv').query("mask == 'grey'")
    want = mask_matrix({'fast': 'fast', 'fast_int8': 'fast_int8'}, fer_folder, 'PublicTest', masks=['grey'])
    private = mask_matrix({'fast': 'fast', 'fast_int8': 'fast_int8'}, fer_folder, masks=['grey'])
    assert got.model.tolist() == want.model.tolist() and np.allclose(got.accuracy, want.accuracy) and np.allclose(got.macro_f1, want.macro_f1)
    assert not np.allclose(want.macro_f1, private.macro_f1)  # the splits are different faces
    bad = run('masked_emotions_analyze', 'fast', '--matrix', fer_folder, '--split', 'Training')
    assert bad.returncode == 2 and "'Training'" in bad.stderr and 'Traceback' not in bad.stderr
    alone = run('masked_emotions_analyze', 'fast', '--split', 'PublicTest', '--tta', 'on')
    assert alone.returncode == 1 and '--split, --tta only apply with --matrix FER2013' in alone.stderr and 'Traceback' not in alone.stderr
