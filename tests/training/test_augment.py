import torch

from satpipe.training.augment import random_dihedral, sat_slidemix


def test_slidemix_expands_the_batch_and_rolls_masks_with_images() -> None:
    generator = torch.Generator().manual_seed(0)
    mask = (torch.rand(4, 32, 32, generator=generator) > 0.5).long()
    image = torch.stack([mask.float() * 7, torch.arange(32.0).expand(4, 32, 32)], dim=1)  # band 0 encodes the mask
    out_image, out_mask = sat_slidemix(image, mask, gamma=3, beta=1.0, generator=generator)
    assert out_image.shape == (12, 2, 32, 32) and out_mask.shape == (12, 32, 32)
    assert torch.equal(out_image[:, 0], out_mask.float() * 7)  # every copy still aligned
    assert torch.equal(out_mask.sum(dim=(1, 2)), mask.repeat(3, 1, 1).sum(dim=(1, 2)))  # circular: nothing lost
    shifted = [not torch.equal(out_image[i, 1], image[i % 4, 1]) for i in range(12)]
    assert sum(shifted) >= 6  # most copies moved (a shift of 0 or 32 pixels leaves an image as it was)


def test_slidemix_shift_is_bounded_by_beta() -> None:
    ramp = torch.arange(100.0).expand(1, 1, 100, 100).contiguous()
    generator = torch.Generator().manual_seed(1)
    for _ in range(20):
        out, _ = sat_slidemix(ramp, torch.zeros(1, 100, 100, dtype=torch.long), gamma=1, beta=0.1, generator=generator)
        rows_shift = (out[0, 0, 0, 0] - ramp[0, 0, 0, 0]).abs().item()
        cols = out[0, 0, 0] if out[0, 0, 0, 1] != out[0, 0, 0, 0] else out[0, 0, :, 0]
        shift = min(int((cols[0]).item()) % 100, (100 - int(cols[0].item())) % 100)
        assert shift <= 10 and rows_shift < 100


def test_dihedral_keeps_image_and_mask_aligned() -> None:
    mask = (torch.rand(16, 8, 8) > 0.5).long()
    image = torch.stack([mask.float(), 1 - mask.float()], dim=1)
    out_image, out_mask = random_dihedral(image, mask)
    assert torch.equal(out_image[:, 0], out_mask.float()) and torch.equal(out_image[:, 1], 1 - out_mask.float())
    assert not torch.equal(out_mask, mask)
