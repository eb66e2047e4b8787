import math

import pytest
import torch

from satpipe.data.patches import IGNORE
from satpipe.training.views import cutmix, cutmix_boxes, gaussian_blur, photometric, random_scale_crop, weak_view


def coordinates(batch: int, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """An image whose bands hold each pixel's own row and column, and a mask holding its row * side + col."""
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    image = torch.stack([rows, cols]).float().expand(batch, 2, side, side).clone() + 1  # +1: 0 is padding
    return image, (rows * side + cols).expand(batch, side, side).clone()


def test_cutmix_boxes_have_the_area_and_shape_asked_for() -> None:
    torch.manual_seed(0)
    boxes = cutmix_boxes(400, 64, 96)
    assert boxes.shape == (400, 64, 96) and boxes.dtype == torch.bool
    areas = boxes.flatten(1).float().mean(1)
    assert areas.min() >= 0.02 * 0.8 and areas.max() <= 0.4 * 1.05  # rounding and clipping to the image
    assert areas.mean() == pytest.approx(0.21, abs=0.03)  # U(0.02, 0.4) on average
    for box in boxes[:50]:  # each is one axis-aligned rectangle
        rows, cols = box.any(1).nonzero(), box.any(0).nonzero()
        h, w = int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)
        assert box.sum() == h * w and 0.3 / 1.5 <= h / w <= 1.5 / 0.3


def test_cutmix_takes_the_other_batch_exactly_inside_the_box() -> None:
    a, b = torch.zeros(2, 3, 8, 8), torch.ones(2, 3, 8, 8)
    box = torch.zeros(2, 8, 8, dtype=torch.bool)
    box[:, 2:5, 1:7] = True
    mixed, mask = cutmix(box, (a, b), (torch.zeros(2, 8, 8), torch.ones(2, 8, 8)))
    assert (
        torch.equal(mixed[:, 0].bool(), box) and torch.equal(mixed[:, 2].bool(), box) and torch.equal(mask.bool(), box)
    )


def test_weak_view_moves_image_and_masks_together() -> None:
    torch.manual_seed(1)
    image, mask = coordinates(6, 32)
    view, view_mask, view_valid = weak_view(image, mask, torch.ones(6, 32, 32, dtype=torch.uint8), fills=(IGNORE, 0))
    inside = view_valid.bool()
    assert 0 < inside.float().mean() < 1  # some samples were shrunk and padded
    # Wherever there is data, the mask names (nearest neighbour) the pixel whose coordinates the image
    # carries (bilinear): they agree within a pixel after any scale, crop, flip or rotation.
    rows, cols = view_mask // 32 + 1, view_mask % 32 + 1
    assert (view[:, 0] - rows).abs()[inside].max() <= 1.5 and (view[:, 1] - cols).abs()[inside].max() <= 1.5
    assert (view_mask[~inside] == IGNORE).all() and (view.sum(1)[~inside] == 0).all()


def test_scale_crop_keeps_shapes_and_pads_with_the_fill() -> None:
    torch.manual_seed(2)
    image, mask = torch.ones(4, 3, 16, 16), torch.ones(4, 16, 16, dtype=torch.long)
    out, out_mask = random_scale_crop(image, mask, scale=(0.5, 0.5), fills=(IGNORE,))
    assert out.shape == image.shape and out_mask.shape == mask.shape
    assert (out.sum(1) == 0).float().mean() == pytest.approx(0.75) and (out_mask == IGNORE).float().mean() == 0.75


def test_photometric_changes_values_not_geometry() -> None:
    torch.manual_seed(3)
    image = torch.zeros(4, 2, 32, 32)
    image[:, :, 8:24, 8:24] = 1.0
    strong = photometric(image, noise=0.0, blur_p=0.0)
    inside, outside = strong[:, :, 8:24, 8:24], strong[:, :, :8, :]
    assert (inside.mean((2, 3)) > outside.mean((2, 3))).all()  # the bright square stays where it was
    assert not torch.allclose(strong, image)
    gains = inside.mean((2, 3)) - outside.mean((2, 3))
    assert gains.std() > 0  # each sample and band got its own jitter


def test_gaussian_blur_preserves_mass_and_smooths() -> None:
    image = torch.zeros(1, 21, 21)
    image[0, 10, 10] = 1
    blurred = gaussian_blur(image, 1.5)
    assert blurred.sum() == pytest.approx(1.0, abs=1e-5) and blurred.max() < 0.2
    assert blurred[0, 10, 10] == blurred.max() and math.isclose(float(blurred[0, 10, 8]), float(blurred[0, 8, 10]))
