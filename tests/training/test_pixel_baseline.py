import io

import numpy as np
import torch

from satpipe.training.pixel_baseline import IGNORE, PixelClassifier, fit_pixel_classifier, sample_pixels


def _patches(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Three classes told apart by band values alone (uint16), with unlabelled margins."""
    masks = rng.integers(0, 3, (6, 16, 16)).astype(np.uint8)
    centres = np.array([[1000, 3000], [3000, 1000], [3000, 3000]], np.float32)  # class -> (band 0, band 1)
    images = centres[masks].transpose(0, 3, 1, 2) + rng.normal(0, 200, (6, 2, 16, 16))
    masks[:, :, :2] = IGNORE
    images[:, :, :, :2] = 0
    return images.astype(np.uint16), masks


def test_sampled_pixels_are_labelled_and_match_their_values() -> None:
    rng = np.random.default_rng(0)
    images, masks = _patches(rng)
    values, labels = sample_pixels(images, masks, 500, rng)
    assert values.shape == (500, 2) and labels.shape == (500,) and (labels != IGNORE).all()
    assert (values > 0).all()  # no pixel of the unlabelled margin was drawn
    every, _ = sample_pixels(images, masks, 10**6, rng)
    assert len(every) == int((masks != IGNORE).sum())


def test_fitted_classifier_returns_class_probabilities_per_pixel_and_learns() -> None:
    rng = np.random.default_rng(1)
    images, masks = _patches(rng)
    values, labels = sample_pixels(images, masks, 1000, rng)
    model = fit_pixel_classifier(values, labels, num_classes=3, low=[0.0, 0.0], high=[4000.0, 4000.0], steps=150)
    with torch.no_grad():
        prob = model(torch.from_numpy(images.astype(np.float32)))
    assert prob.shape == (6, 3, 16, 16)
    torch.testing.assert_close(prob.sum(dim=1), torch.ones(6, 16, 16))
    labelled = masks != IGNORE
    accuracy = (prob.argmax(1).numpy()[labelled] == masks[labelled]).mean()
    assert accuracy > 0.95

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    again = PixelClassifier([0.0, 0.0], [1.0, 1.0], num_classes=3)
    again.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(again(torch.from_numpy(images[:1].astype(np.float32))), prob[:1])
