import json
from pathlib import Path

import torch

from satpipe.data.patches import IGNORE
from satpipe.training.segmentation import Segmenter, masked_cross_entropy


def test_small_sat_unet_learns_clouds(trained_segmenter: dict[str, Path]) -> None:
    metrics = json.loads((trained_segmenter["evaluate"] / "metrics.json").read_text())
    jaccard = metrics["full_scene"]["mean_over_scenes"]["jaccard"]
    clouds = sum(r["cloud_fraction"] for r in metrics["per_scene"]) / len(metrics["per_scene"])
    assert jaccard >= 0.6 > clouds, (
        jaccard,
        clouds,
    )  # far above predicting cloud everywhere (Jaccard = cloud fraction)


def test_loss_ignores_pixels_without_data() -> None:
    logits = torch.tensor([[[-1.0, 2.0, 0.0], [5.0, -5.0, 50.0], [0.0, 0.0, 0.0]]]).unsqueeze(-1)  # (1, K=3, 3, 1)
    mask = torch.tensor([[[1], [0], [IGNORE]]])
    assert torch.isclose(masked_cross_entropy(logits, mask), masked_cross_entropy(logits[:, :, :2], mask[:, :2]))
    assert masked_cross_entropy(logits, torch.tensor([[[0], [1], [IGNORE]]])) > 4


def test_two_classes_train_as_binary_cross_entropy_of_one_logit() -> None:
    """A cloud network's one channel z is read as logits (0, z): the loss is BCE and p(cloud) is sigmoid(z)."""
    module = Segmenter(arch="unet_small", band_names=["a"], low=[0], high=[1], class_names=["clear", "cloud"])
    z = torch.randn(2, 1, 4, 4)
    mask = torch.randint(0, 2, (2, 4, 4))
    mask[0, 0, 0] = IGNORE
    logits = module.class_logits(z)
    valid = mask != IGNORE
    bce = torch.nn.functional.binary_cross_entropy_with_logits(z[:, 0][valid], mask[valid].float())
    assert torch.isclose(module.compute_loss(logits, mask), bce, atol=1e-6)
    assert torch.allclose(logits.softmax(1)[:, 1], torch.sigmoid(z[:, 0]), atol=1e-6)
    assert module.monitor == "val_jaccard"


def test_k_classes_have_k_outputs_and_watch_miou() -> None:
    module = Segmenter(arch="unet_small", band_names=["a", "b"], low=[0, 0], high=[1, 1], class_names=list("abcde"))
    assert module(torch.rand(1, 2, 32, 32)).shape == (1, 5, 32, 32)
    assert module.monitor == "val_miou"


def test_percentile_normalisation_lives_in_the_module() -> None:
    module = Segmenter(arch="unet_cloudmask", band_names=["a", "b"], low=[100, 0], high=[200, 10])
    x = torch.tensor([50.0, 150.0, 400.0]).view(1, 1, 1, 3).expand(1, 2, 1, 3)
    assert module.normalize(x)[0, 0, 0].tolist() == [0.0, 0.5, 1.0]
    assert module.in_channels == 2
