"The release and research tools in tools/, run as a maintainer runs them, on tiny models."
import json, subprocess, sys
from pathlib import Path
import numpy as np, pytest, torch
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


@pytest.mark.parametrize('name', ['bundle_model', 'split_ensemble', 'selection_cv', 'tta_views'])
def test_tools_explain_themselves(name):
    r = tool(name)
    assert r.returncode != 0 and f'python tools/{name}.py' in r.stderr and 'Traceback' not in r.stderr, r.stderr
