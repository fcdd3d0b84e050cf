"""CI guards the product: where FER2013 is beside the repository (../shared/data/fer2013), the bundled model is scored
on all 3,589 PrivateTest faces under the grey polygon and under a realistic surgical mask, and must give its card's
numbers. A change that breaks the model, the masks, the landmarks or the framing cannot land silently."""
from pathlib import Path
import pytest
from conftest import REPORT

FER2013 = Path(__file__).resolve().parent.parent.parent / 'shared' / 'data' / 'fer2013'


@pytest.mark.skipif(not FER2013.exists(), reason=f'FER2013 is not at {FER2013}')
def test_bundled_model_scores_as_its_card_says():
    from masked_emotions.analysis import mask_matrix
    from masked_emotions.models import default_model_card, read_card
    card = read_card(default_model_card())['metrics']['matrix']['PrivateTest']
    mx = mask_matrix({'bundled': None}, FER2013, masks=('grey', 'surgical')).set_index('mask')
    for mask in ('grey', 'surgical'):
        REPORT.append(f"bundled model, PrivateTest, {mask}: accuracy {mx.accuracy[mask]:.4f} (card {card[mask]['accuracy']}) on {mx.n[mask]} faces")
        assert mx.n[mask] == 3589
        assert round(mx.accuracy[mask], 4) == card[mask]['accuracy'] and round(mx.macro_f1[mask], 4) == card[mask]['macro_f1']
