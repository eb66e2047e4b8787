import json
from pathlib import Path

import torch

from satpipe.data.patches import IGNORE
from satpipe.training.segmentation import CloudSegmenter, masked_bce


def test_small_sat_unet_learns_clouds(trained_segmenter: dict[str, Path]) -> None:
    metrics = json.loads((trained_segmenter["evaluate"] / "metrics.json").read_text())
    jaccard = metrics["full_scene"]["mean_over_scenes"]["jaccard"]
    clouds = sum(r["cloud_fraction"] for r in metrics["per_scene"]) / len(metrics["per_scene"])
    assert jaccard >= 0.6 > clouds, (
        jaccard,
        clouds,
    )  # far above predicting cloud everywhere (Jaccard = cloud fraction)


def test_loss_ignores_pixels_without_data() -> None:
    logits = torch.tensor([[5.0, -5.0, 50.0]])
    assert torch.isclose(
        masked_bce(logits, torch.tensor([[1, 0, IGNORE]])), masked_bce(logits[:, :2], torch.tensor([[1, 0]]))
    )
    assert masked_bce(logits, torch.tensor([[0, 1, IGNORE]])) > 4


def test_percentile_normalisation_lives_in_the_module() -> None:
    module = CloudSegmenter(arch="unet_cloudmask", band_names=["a", "b"], low=[100, 0], high=[200, 10])
    x = torch.tensor([50.0, 150.0, 400.0]).view(1, 1, 1, 3).expand(1, 2, 1, 3)
    assert module.normalize(x)[0, 0, 0].tolist() == [0.0, 0.5, 1.0]
    assert module.in_channels == 2
