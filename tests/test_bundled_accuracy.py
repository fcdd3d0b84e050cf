"""CI guards the product: where FER2013 is beside the repository (../shared/data/fer2013), the bundled model is scored
on all 3,589 PrivateTest faces, bare and in a realistic surgical mask, through `predict` as users get it, and must give
its card's numbers. A change that breaks the model, the masks, the landmarks, the mask detector, the occluder or the
framing cannot land silently."""
from pathlib import Path
import pytest
from conftest import REPORT

FER2013 = Path(__file__).resolve().parent.parent.parent / 'shared' / 'data' / 'fer2013'
FACES = 0.001  # about 3 of 3,589 faces: OpenVINO on another CPU may round a near tie the other way


@pytest.mark.skipif(not FER2013.exists(), reason=f'FER2013 is not at {FER2013}')
def test_bundled_model_scores_as_its_card_says():
    from masked_emotions.analysis import mask_matrix
    from masked_emotions.models import default_model_card, read_card
    card = read_card(default_model_card())['metrics']['matrix']['PrivateTest']
    mx = mask_matrix({'accurate': None}, FER2013, masks=('unmasked', 'surgical')).set_index('mask')
    for mask in ('unmasked', 'surgical'):
        REPORT.append(f"bundled model through predict, PrivateTest, {mask}: accuracy {mx.accuracy[mask]:.4f} (card {card[mask]['accuracy']}) on {mx.n[mask]} faces")
        assert mx.n[mask] == 3589
        assert abs(mx.accuracy[mask] - card[mask]['accuracy']) <= FACES, (mask, mx.accuracy[mask], card[mask])
        assert abs(mx.macro_f1[mask] - card[mask]['macro_f1']) <= 2 * FACES, (mask, mx.macro_f1[mask], card[mask])
        assert abs(mx.masked[mask] - card[mask]['masked']) <= FACES, (mask, mx.masked[mask], card[mask])
