"Masking and training into a folder that is full or read-only: a clear error, and nothing half-written left behind."
import json, subprocess
from pathlib import Path
import pandas as pd, pytest
from conftest import run


@pytest.fixture
def mounted(tmp_path):
    "A small tmpfs mounted on a folder, with the given options (needs root, as CI has; skips otherwise)."
    mounts = []
    def mount(name, opts):
        d = tmp_path / name; d.mkdir()
        r = subprocess.run(['mount', '-t', 'tmpfs', '-o', opts, 'tmpfs', str(d)], capture_output=True, text=True)
        if r.returncode: pytest.skip(f'cannot mount a tmpfs here ({r.stderr.strip()}): needs root')
        mounts.append(d); return d
    yield mount
    for d in mounts: subprocess.run(['umount', '-l', str(d)])


def leftovers(folder: Path) -> list:
    "Temporary files that a write left behind (atomic_path's .NAME.* or a checkpoint-new)."
    return [p.name for p in folder.rglob('*') if p.name.startswith('.') and p.name != '.masking.lock' or 'checkpoint-new' in p.name]


def test_mask_into_full_disk(fer_folder, mounted):
    full = mounted('full', 'size=64k')
    r = run('masked_emotions_mask', fer_folder, full / 'masked', '--n_workers', '1')
    assert r.returncode == 1 and 'No space left on device' in r.stderr and 'rerun to resume' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    assert leftovers(full) == []
    from PIL import Image
    for f in (full / 'masked').rglob('*.png'): Image.open(f).verify()  # what was written is whole


def test_mask_into_read_only_folder(fer_folder, mounted):
    ro = mounted('ro', 'ro,size=1m')
    r = run('masked_emotions_mask', fer_folder, ro / 'masked')
    assert r.returncode == 1 and 'masked: cannot write the output here (Read-only file system)' in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_train_into_read_only_folder(fer_folder, mounted):
    ro = mounted('ro', 'ro,size=1m')
    r = run('masked_emotions_train', '--data_loc', fer_folder, '--num_epochs', '1', '--model_dir', ro / 'run')
    assert r.returncode == 1 and 'run: cannot write the run here (Read-only file system)' in r.stderr and 'Traceback' not in r.stderr, r.stderr


def test_train_into_full_disk(fer_folder, mounted):
    full = mounted('full', 'size=6m')  # room for the run's small files and a model or two, not for every checkpoint
    r = run('masked_emotions_train', '--data_loc', fer_folder, '--num_epochs', '3', '--batch_size', '16', '--model_dir', full / 'run')
    assert r.returncode == 1 and 'No space left on device' in r.stderr and 'Traceback' not in r.stderr, r.stderr[-2000:]
    assert leftovers(full) == []
    if (full / 'run' / 'best.json').exists():  # what was written is whole
        from masked_emotions.models import load_model
        load_model(full / 'run')
