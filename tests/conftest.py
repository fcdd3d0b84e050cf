"Fixtures for the end-to-end tests: a miniature FER2013 made by the project itself (no ../shared needed)."
import os, subprocess, sys
from pathlib import Path
import pytest
from masked_emotions.core import synthetic_fer2013


@pytest.fixture(scope='session')
def fer_folder(tmp_path_factory) -> Path:
    "A miniature FER2013 in the Kaggle image-folder layout: 3 faces per emotion per split."
    return synthetic_fer2013(tmp_path_factory.mktemp('fer') / 'fer2013', per_class=3)


@pytest.fixture(scope='session')
def fer_csv(tmp_path_factory) -> Path:
    "The same kind of miniature as Kaggle's icml_face_data.csv (column names with a leading space)."
    return synthetic_fer2013(tmp_path_factory.mktemp('csv') / 'icml_face_data.csv', fmt='csv', per_class=2, icml_columns=True)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    "Each test masks into its own cache, never the user's."
    monkeypatch.setenv('MASKED_EMOTIONS_CACHE', str(tmp_path / 'cache'))


def run(*args, cwd=None) -> subprocess.CompletedProcess:
    "Run a console script as a user would; never raises."
    return subprocess.run(list(map(str, args)), capture_output=True, text=True, cwd=cwd, env=dict(os.environ, PYTHONWARNINGS='ignore'))


REPORT = []  # lines a test wants in CI's log whatever pytest's verbosity (the bundled model's accuracy check)


def pytest_terminal_summary(terminalreporter):
    for line in REPORT: terminalreporter.write_line(line)
