"""Experiment configuration: typed dataclasses, named presets, overrides and validation.

This is the only place for defaults. A preset lists only what differs from the defaults; a
``--set section.key=value`` override is parsed by the type of the field it names, and an unknown key
or a bad value is a one-line error before anything runs.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from satpipe.errors import ConfigError

# -- classification ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DataConfig:
    """Where the chips come from and how they are split."""

    source: str = "download"  # download (public archive) | synthetic (generated) | local (--data-dir)
    bands: str = "rgb"  # rgb (JPEG product) | ms (13-band GeoTIFF product)
    synthetic_per_class: int = 300  # chips per class when source=synthetic
    synthetic_seed: int = 0
    train_fraction: float = 0.6  # the common 60/20/20 EuroSAT split
    val_fraction: float = 0.2
    split_seed: int = 42
    max_per_class: int | None = None  # subsample for quick experiments on real data


@dataclass(frozen=True)
class ModelConfig:
    """The classifier."""

    backbone: str = "efficientnet_b0"  # any timm model name
    pretrained: bool = True  # ImageNet weights from the Hugging Face hub (needs network)
    drop_rate: float = 0.2
    input_size: int | None = 224  # chips are resized to this on the device; None keeps 64x64


@dataclass(frozen=True)
class TrainingConfig:
    """Two-phase fine-tuning: the head alone on a frozen backbone, then everything."""

    epochs: int = 15
    phase1_epochs: int = 5  # epochs with the backbone frozen
    phase1_lr: float = 2e-3  # head learning rate in phase 1
    phase2_lr: float = 2e-4  # head learning rate in phase 2 (a fresh cosine schedule)
    backbone_lr_ratio: float = 0.1  # backbone learning rate in phase 2, relative to phase2_lr
    weight_decay: float = 0.01  # AdamW; not applied to biases and normalisation weights
    warmup_steps: int = 100  # linear warm-up at the start of phase 1
    label_smoothing: float = 0.1
    augment: bool = True  # random flips and 90-degree rotations
    batch_size: int = 64
    num_workers: int = 4
    precision: str = "auto"  # auto = bf16-mixed on GPUs that have it, 16-mixed on older GPUs, fp32 on CPU
    save_top_k: int = 3  # checkpoints kept, ranked by validation accuracy
    early_stopping_patience: int | None = None  # epochs without improvement before stopping; None = never
    tsne_every: int = 5  # epochs between t-SNE projections of validation embeddings
    seed: int = 42
    deterministic: bool = False  # deterministic algorithms only: CPU runs repeat bit for bit for a seed
    resume_every_n_steps: int = 500  # resume checkpoints every N steps (and at every epoch end); 0: epoch ends


@dataclass(frozen=True)
class TrackingConfig:
    """Weights & Biases. Offline unless a key is present and online is asked for."""

    project: str = "satpipe"
    entity: str | None = None
    mode: str = "offline"  # offline | online | disabled


@dataclass(frozen=True)
class ResourcesConfig:
    """What the training task asks of the cluster (ignored by local runs)."""

    gpu: str = "T4:1"  # TYPE:COUNT per node, e.g. T4:1, A100:4, H100:8; one training process per GPU (DDP)
    nodes: int = 1  # more than one: a multi-node PyTorch job (torch elastic); batches are per GPU
    cpu: int = 8  # per node
    memory: str = "32Gi"  # per node


@dataclass(frozen=True)
class ClassificationConfig:
    """Scene classification on EuroSAT-style chips."""

    name: str = "eurosat"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)


# -- cloud segmentation --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudDataConfig:
    """Where cloudy scenes come from and how they are cut into training patches."""

    source: str = "local"  # local (--data-dir: 38-Cloud / 95-Cloud layout) | synthetic (generated)
    synthetic_train_scenes: int = 12
    synthetic_test_scenes: int = 4
    synthetic_size: int = 768  # scene side in pixels
    synthetic_seed: int = 0
    patch_size: int = 384  # training patch side; 38-Cloud's 384-pixel patches are cut again when smaller
    overlap: int = 0  # pixels shared by neighbouring training patches
    min_valid_fraction: float = 0.2  # skip patches with less data (non-zero pixels) than this
    val_fraction: float = 0.2  # share of training scenes held out whole for validation
    split_seed: int = 42


@dataclass(frozen=True)
class SegmentationModelConfig:
    """The segmentation network and its input normalisation."""

    arch: str = "satunet"  # satunet | unet | unet_cloudmask | unet_small | unet_timm (a U-Net on a timm encoder)
    # percentile (1st/99th of training pixels, per band) | fixed (dtype range) | cloudmask (the benchmark's
    # refs - 0.5 and (bts - 270) / 22; CloudMask presets only)
    normalization: str = "percentile"
    encoder: str = "resnet34"  # unet_timm's encoder: any timm model name, e.g. resnet18, efficientnet_b2, convnext_tiny
    pretrained: bool = False  # unet_timm only: ImageNet weights for the encoder (needs network or the HF cache)


@dataclass(frozen=True)
class SegmentationTrainingConfig:
    """Supervised training with Sat-SlideMix, as Sat-UNet was trained."""

    epochs: int = 60
    lr: float = 1e-4  # Adam
    weight_decay: float = 1e-3  # L2, as Sat-UNet
    loss: str = "ce"  # ce (cross-entropy; for two classes, the BCE of one logit) | ce+dice
    class_weighting: str = "none"  # none | inverse_sqrt (loss weights 1/sqrt(training frequency) of each class)
    augment: bool = True  # random flips and 90-degree rotations
    slidemix: bool = True  # Sat-SlideMix batch expansion by circular shifts
    slidemix_gamma: int = 3  # copies of each batch
    slidemix_beta: float = 1.0  # largest shift, as a fraction of the patch side
    batch_size: int = 8
    num_workers: int = 4
    precision: str = "auto"  # auto = bf16-mixed on GPUs that have it, 16-mixed on older GPUs, fp32 on CPU
    save_top_k: int = 3  # checkpoints kept, ranked by validation Jaccard (two classes) or mIoU
    early_stopping_patience: int | None = 15
    overlays_every: int = 1  # epochs between W&B prediction overlays
    seed: int = 42
    deterministic: bool = False  # deterministic algorithms only: CPU runs repeat bit for bit for a seed
    resume_every_n_steps: int = 500  # resume checkpoints every N steps (and at every epoch end); 0: epoch ends


@dataclass(frozen=True)
class CloudEvaluationConfig:
    """Full-scene inference and the 38-Cloud protocol."""

    threshold: float = 0.5  # cloud where p > threshold (Cloud-Net's own outputs used 12/255)
    window: int = 384  # inference window; a multiple of 32
    overlap: int = 64
    blend: str = "cosine"  # cosine | gaussian | center (MLCommons) | none (plain averaging)
    batch_size: int = 8
    cross_dataset: bool = True  # also score GhalamClouds-layout data found beside the test set


@dataclass(frozen=True)
class SegmentationConfig:
    """Cloud segmentation on 38-Cloud-style data."""

    name: str = "38cloud"
    data: CloudDataConfig = field(default_factory=CloudDataConfig)
    model: SegmentationModelConfig = field(default_factory=SegmentationModelConfig)
    training: SegmentationTrainingConfig = field(default_factory=SegmentationTrainingConfig)
    evaluation: CloudEvaluationConfig = field(default_factory=CloudEvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)


# -- MLCommons CloudMask ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CloudMaskDataConfig:
    """Where Sentinel-3 SLSTR scenes come from; patches are always cut as the reference cuts them."""

    source: str = "download"  # download (the benchmark's object store) | synthetic | local (--data-dir)
    max_files: int | None = None  # only the first N files of each split, for a quick look at real data
    # Disk of the download and patch pods on a cluster (a Kubernetes quantity): every file of the list (187 GB)
    # and the training patches cut from them (48.5 MB per training file). The download checks the files fit.
    disk: str = "320Gi"
    synthetic_train_files: int = 10
    synthetic_test_files: int = 4
    synthetic_seed: int = 0
    val_fraction: float = 0.2  # the reference's 80/20 split, by file
    split_seed: int = 42


@dataclass(frozen=True)
class CloudMaskEvaluationConfig:
    """Scoring test scenes with the reference geometry and with satpipe's blended engine."""

    threshold: float = 0.5  # cloud where p > threshold, as the benchmark scores it
    overlap: int = 80  # of the blended engine's 256-pixel windows; 80 matches the reference's stride of 176
    blend: str = "cosine"  # cosine | gaussian | center | none
    batch_size: int = 16


@dataclass(frozen=True)
class CloudMaskConfig:
    """The MLCommons CloudMask benchmark: the reference U-Net on 9-channel SLSTR scenes, repeated over seeds."""

    name: str = "cloudmask-benchmark"
    seeds: int = 1  # training runs with seeds training.seed, training.seed + 1, ...; each cached on its own
    data: CloudMaskDataConfig = field(default_factory=CloudMaskDataConfig)
    model: SegmentationModelConfig = field(
        default_factory=lambda: SegmentationModelConfig(arch="unet_cloudmask", normalization="cloudmask")
    )
    # The reference's training: Adam at 1e-3, batches of 32, binary cross-entropy, no augmentation.
    training: SegmentationTrainingConfig = field(
        default_factory=lambda: SegmentationTrainingConfig(
            epochs=100, lr=1e-3, weight_decay=0.0, augment=False, slidemix=False, batch_size=32,
            early_stopping_patience=25,
        )
    )  # fmt: skip
    evaluation: CloudMaskEvaluationConfig = field(default_factory=CloudMaskEvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    resources: ResourcesConfig = field(default_factory=lambda: ResourcesConfig(gpu="A100:1", memory="64Gi"))


# -- semi-supervised segmentation ----------------------------------------------------------------------


@dataclass(frozen=True)
class SemiSupervisedConfig:
    """The labelled subset both arms share and how the semi-supervised arm uses the rest."""

    # Labelled shares of the training patches, comma separated. 1 labels every patch: supervised-only on all
    # the labels the smaller shares hide, the reference that says how much room unlabelled data has to fill.
    fractions: str = "1/16,1"
    split_by: str = "patch"  # patch | scene (label whole scenes, as annotation campaigns do)
    split_seed: int = 0  # which patches or scenes are labelled
    method: str = "fixmatch"  # fixmatch | unimatch (two strong views and feature perturbation)
    threshold: float = 0.95  # pseudo-labels count where max(p, 1 - p) reaches this
    ema_decay: float | None = None  # pseudo-labels from an EMA teacher with this decay; None: the model itself
    # Scenes without labels that join the unlabelled pool: with data.source=synthetic, this many more
    # generated scenes (their labels never reach training); with real data, run.py --unlabelled-dir.
    unlabelled_scenes: int = 0


@dataclass(frozen=True)
class SemiConfig:
    """Supervised-only against semi-supervised training on the same labelled subset, over seeds."""

    name: str = "semi"
    seeds: int = 3  # each arm trains with seeds training.seed, training.seed + 1, ...
    data: CloudDataConfig = field(default_factory=CloudDataConfig)
    model: SegmentationModelConfig = field(default_factory=SegmentationModelConfig)
    training: SegmentationTrainingConfig = field(default_factory=SegmentationTrainingConfig)
    semi: SemiSupervisedConfig = field(default_factory=SemiSupervisedConfig)
    evaluation: CloudEvaluationConfig = field(default_factory=lambda: CloudEvaluationConfig(cross_dataset=False))
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)


# -- your own imagery: K-class segmentation of a dataset described by a dataset.yaml ----------------------


@dataclass(frozen=True)
class DescribedDataConfig:
    """A folder with a dataset.yaml (or generated land cover), cut into training patches and split by scene."""

    source: str = "local"  # local (--data-dir: a folder with a dataset.yaml) | synthetic (generated land cover)
    synthetic_train_scenes: int = 24
    synthetic_test_scenes: int = 8
    synthetic_size: int = 256  # scene side in pixels
    synthetic_seed: int = 0
    patch_size: int = 256
    overlap: int = 0  # pixels shared by neighbouring training patches
    min_valid_fraction: float = 0.2  # skip patches with less data than this
    val_fraction: float = 0.2  # share of training scenes held out whole for validation (unless splits lists val)
    test_fraction: float = 0.2  # share of scenes held out whole for testing (unless splits lists test)
    split_seed: int = 42


@dataclass(frozen=True)
class DescribedEvaluationConfig:
    """Full-scene inference of the test scenes into class-id and confidence COGs."""

    window: int = 512  # a multiple of 32
    overlap: int = 64
    blend: str = "cosine"  # cosine | gaussian | center | none
    batch_size: int = 4


@dataclass(frozen=True)
class DescribedConfig:
    """K-class segmentation of any GeoTIFF dataset described by a dataset.yaml, over seeds."""

    name: str = "segment"
    seeds: int = 1  # training runs with seeds training.seed, training.seed + 1, ...; each cached on its own
    data: DescribedDataConfig = field(default_factory=DescribedDataConfig)
    # A U-Net on a timm encoder; on a cluster --set model.pretrained=true starts it from ImageNet weights.
    model: SegmentationModelConfig = field(default_factory=lambda: SegmentationModelConfig(arch="unet_timm"))
    training: SegmentationTrainingConfig = field(
        default_factory=lambda: SegmentationTrainingConfig(epochs=60, lr=1e-3, weight_decay=1e-4, slidemix=False)
    )
    evaluation: DescribedEvaluationConfig = field(default_factory=DescribedEvaluationConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)


# -- presets -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """A named starting point: a config class and what differs from its defaults."""

    config_class: type
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)


PRESETS: dict[str, Preset] = {
    "quickstart": Preset(
        ClassificationConfig,
        "offline end-to-end run on synthetic EuroSAT; a few minutes on a laptop CPU",
        {
            "data.source": "synthetic",
            "data.synthetic_per_class": 200,
            # No pretrained weights offline. A frozen random backbone teaches the head nothing, so
            # phase 1 is short and phase 2 trains the backbone at the head's rate, as from scratch.
            "model.pretrained": False,
            "model.backbone": "resnet10t",  # learns fastest from scratch on 2 CPU cores
            "model.input_size": None,
            "training.epochs": 8,
            "training.phase1_epochs": 1,
            "training.phase2_lr": 3e-3,
            "training.backbone_lr_ratio": 1.0,
            "training.warmup_steps": 10,
            "training.batch_size": 32,
            "training.num_workers": 0,  # worker processes cost more than they save on a small CPU box
            "training.tsne_every": 4,
        },
    ),
    "eurosat": Preset(ClassificationConfig, "EuroSAT RGB from its public archive; pretrained EfficientNet-B0 on a T4"),
    "eurosat-ms": Preset(
        ClassificationConfig,
        "EuroSAT 13-band GeoTIFFs; the first convolution is adapted from RGB weights",
        {"data.bands": "ms", "model.input_size": 128},
    ),
    "clouds": Preset(
        SegmentationConfig,
        "offline cloud segmentation on synthetic 38-Cloud-style scenes; minutes on a laptop CPU",
        {
            "data.source": "synthetic",
            "data.patch_size": 128,  # 38-Cloud's 384-pixel patches cut in nine: CPU-sized steps
            "training.epochs": 8,
            "training.lr": 1e-3,  # a short run from scratch needs a larger step than Sat-UNet's 1e-4
            "training.weight_decay": 1e-4,
            "training.slidemix_gamma": 2,
            "training.batch_size": 16,
            "training.num_workers": 0,
            "training.early_stopping_patience": None,
            "evaluation.batch_size": 4,
        },
    ),
    "38cloud": Preset(SegmentationConfig, "38-Cloud (or 95-Cloud) from --data-dir; Sat-UNet with Sat-SlideMix on a T4"),
    "cloudmask": Preset(
        CloudMaskConfig,
        "offline MLCommons CloudMask on synthetic SLSTR scenes; minutes on a laptop CPU",
        {
            "data.source": "synthetic",
            "data.disk": "64Gi",  # a few generated scenes
            # The reference U-Net convolves 32 channels at full resolution: 5x slower than Sat-UNet on a CPU.
            "model.arch": "satunet",
            "training.epochs": 6,
            "training.batch_size": 8,
            "training.num_workers": 0,
            "training.early_stopping_patience": None,
            "evaluation.batch_size": 4,
        },
    ),
    "semi": Preset(
        SemiConfig,
        "offline semi-supervised vs supervised-only on synthetic cloudy scenes with 1/16 of the labels",
        {
            "data.source": "synthetic",
            "data.synthetic_train_scenes": 8,
            "data.synthetic_size": 512,
            "data.patch_size": 64,  # small patches and a small U-Net: six trainings fit in minutes on a CPU
            "model.arch": "unet_small",
            "training.epochs": 15,
            "training.lr": 1e-3,
            "training.weight_decay": 1e-4,
            "training.num_workers": 0,
            "training.early_stopping_patience": None,
            "evaluation.window": 256,
            "evaluation.batch_size": 4,
        },
    ),
    "cloudmask-benchmark": Preset(
        CloudMaskConfig,
        "MLCommons CloudMask from its object store (or --data-dir): the reference U-Net and training on a GPU",
    ),
    "landcover": Preset(
        DescribedConfig,
        "offline 7-class land cover on synthetic GeoTIFF scenes read through their dataset.yaml; minutes on a CPU",
        {
            "data.source": "synthetic",
            "data.synthetic_train_scenes": 48,  # scenes differ in season, style and geometry: many are needed
            "data.patch_size": 128,
            "model.arch": "unet_small",
            "training.epochs": 30,
            "training.batch_size": 16,
            "training.num_workers": 0,
            "training.early_stopping_patience": None,
            "evaluation.window": 256,
        },
    ),
    "segment": Preset(
        DescribedConfig,
        "your own GeoTIFF scenes and masks from --data-dir, described by its dataset.yaml; a U-Net on a GPU",
    ),
}
DEFAULT_PRESET = "quickstart"


# -- building, overriding, validating ----------------------------------------------------------------


def _field_types(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _parse(value: str, annotation: Any, key: str) -> Any:
    """Parse a command-line string into the type a field is annotated with."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        if value.lower() in ("none", "null"):
            return None
        annotation = next(a for a in args if a is not type(None))
    try:
        if annotation is bool:
            if value.lower() in ("true", "yes", "1", "on"):
                return True
            if value.lower() in ("false", "no", "0", "off"):
                return False
            raise ValueError
        if annotation is int:
            return int(value)
        if annotation is float:
            return float(value)
    except ValueError:
        raise ConfigError(f"{key}: expected {annotation.__name__}, got {value!r}") from None
    return value


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    keys = []
    for f in dataclasses.fields(cls):
        hint = _field_types(cls)[f.name]
        keys.extend(_all_keys(hint, f"{prefix}{f.name}.") if dataclasses.is_dataclass(hint) else [f"{prefix}{f.name}"])
    return keys


def set_value(cfg: Any, key: str, value: Any) -> Any:
    """Return a copy of ``cfg`` with the dotted ``key`` set; strings are parsed by the field's type.

    Raises:
        ConfigError: If the key is not a setting of this config or the value does not parse.
    """
    cls = type(cfg)
    head, _, rest = key.partition(".")
    section = _field_types(cls).get(head)
    if not rest and dataclasses.is_dataclass(section):
        raise ConfigError(f"{key!r} is a section; set one of its fields, e.g. {_all_keys(section, key + '.')[0]!r}")
    if key not in _all_keys(cls):
        raise ConfigError(_unknown_setting(key, cls, cfg.name))
    return _replace(cfg, key, value)


def _replace(cfg: Any, key: str, value: Any, prefix: str = "") -> Any:
    head, _, rest = key.partition(".")
    if rest:
        return dataclasses.replace(cfg, **{head: _replace(getattr(cfg, head), rest, value, f"{prefix}{head}.")})
    hint = _field_types(type(cfg))[head]
    return dataclasses.replace(cfg, **{head: _parse(value, hint, prefix + key) if isinstance(value, str) else value})


def presets_with(key: str) -> list[str]:
    """The presets whose config has the dotted setting ``key``."""
    return [name for name, spec in PRESETS.items() if key in _all_keys(spec.config_class)]


def _unknown_setting(key: str, cls: type, preset: str) -> str:
    """Why ``key`` is refused, suggesting only settings this preset's config has."""
    own = _all_keys(cls)
    leaves = {k.rsplit(".", 1)[-1]: k for k in own}
    close = difflib.get_close_matches(key, own, n=1)
    if not close and (leaf := difflib.get_close_matches(key.rsplit(".", 1)[-1], list(leaves), n=1)):
        close = [leaves[leaf[0]]]
    hint = f"; did you mean {close[0]!r}?" if close else ""
    if elsewhere := presets_with(key):
        return f"{key!r} does not apply to preset {preset!r} (it is a setting of {', '.join(elsewhere)}){hint}"
    return f"unknown setting {key!r}{hint}"


def build_config(preset: str = DEFAULT_PRESET, overrides: list[str] | None = None) -> Any:
    """Build and validate a config from a preset name and ``key=value`` overrides.

    Raises:
        ConfigError: For an unknown preset, a malformed or unknown override, or an invalid value.
    """
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    cfg = spec.config_class(name=preset)
    for key, value in spec.overrides.items():
        cfg = set_value(cfg, key, value)
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects key=value (for example training.phase2_lr=1e-4), got {item!r}")
        cfg = set_value(cfg, key.strip(), value.strip())
    validate(cfg)
    return cfg


def _require(ok: bool, key: str, value: Any, requirement: str) -> None:
    if not ok:
        raise ConfigError(f"{key} must be {requirement}, got {value!r}")


GPU_TYPES = ("T4", "L4", "A10G", "A100", "A100_80G", "H100", "H200")
GPU_COUNTS = ("1", "2", "4", "8")
PRECISIONS = ("auto", "32-true", "16-mixed", "bf16-mixed")
#: The registered segmentation architectures (satpipe.models.list_models(); kept here so that
#: validating a config does not import torch).
SEGMENTATION_ARCHS = ("satunet", "unet", "unet_cloudmask", "unet_small", "unet_timm")
#: Blending modes of the inference engine (satpipe.evaluation.engine.BLEND_MODES).
BLEND_MODES = ("cosine", "gaussian", "center", "none")


def validate(cfg: Any) -> None:
    """Check every value that has a valid range; raise on the first that is out of it.

    Raises:
        ConfigError: Naming the setting, the value and what it must be.
    """
    _validate_common(cfg.training, cfg.tracking, cfg.resources)
    if isinstance(cfg, SegmentationConfig):
        _validate_segmentation(cfg)
    elif isinstance(cfg, CloudMaskConfig):
        _validate_cloudmask(cfg)
    elif isinstance(cfg, SemiConfig):
        _validate_segmentation(cfg)  # type: ignore[arg-type]
        _validate_semi(cfg)
    elif isinstance(cfg, DescribedConfig):
        _validate_described(cfg)
    else:
        _validate_classification(cfg)


def _validate_common(t: Any, k: TrackingConfig, r: ResourcesConfig) -> None:
    _require(t.epochs >= 1, "training.epochs", t.epochs, ">= 1")
    _require(t.batch_size >= 1, "training.batch_size", t.batch_size, ">= 1")
    _require(t.num_workers >= 0, "training.num_workers", t.num_workers, ">= 0")
    _require(t.weight_decay >= 0, "training.weight_decay", t.weight_decay, ">= 0")
    _require(t.precision in PRECISIONS, "training.precision", t.precision, "auto, 32-true, 16-mixed or bf16-mixed")
    _require(t.save_top_k >= 1, "training.save_top_k", t.save_top_k, ">= 1")
    _require(t.resume_every_n_steps >= 0, "training.resume_every_n_steps", t.resume_every_n_steps, ">= 0")
    _require(t.early_stopping_patience is None or t.early_stopping_patience >= 1, "training.early_stopping_patience",
             t.early_stopping_patience, "None or >= 1")  # fmt: skip
    _require(k.mode in ("offline", "online", "disabled"), "tracking.mode", k.mode, "offline, online or disabled")
    kind, _, count = r.gpu.partition(":")
    _require(kind in GPU_TYPES and count in GPU_COUNTS, "resources.gpu", r.gpu,
             f"TYPE:COUNT with TYPE one of {', '.join(GPU_TYPES)} and COUNT 1, 2, 4 or 8")  # fmt: skip
    _require(1 <= r.nodes <= 64, "resources.nodes", r.nodes, "between 1 and 64")
    _require(r.cpu >= 1, "resources.cpu", r.cpu, ">= 1")


def _validate_segmentation_training(m: SegmentationModelConfig, t: SegmentationTrainingConfig) -> None:
    _require(m.arch in SEGMENTATION_ARCHS, "model.arch", m.arch, f"one of {', '.join(SEGMENTATION_ARCHS)}")
    timm_encoder = m.arch == "unet_timm"
    _require(bool(m.encoder), "model.encoder", m.encoder, "a timm model name")
    _require(timm_encoder or not m.pretrained, "model.pretrained", m.pretrained,
             "false unless model.arch=unet_timm (the other networks have no pretrained weights)")  # fmt: skip
    _require(0 < t.lr < 1, "training.lr", t.lr, "> 0 (and < 1)")
    _require(t.loss in ("ce", "ce+dice"), "training.loss", t.loss, "ce or ce+dice")
    _require(t.class_weighting in ("none", "inverse_sqrt"), "training.class_weighting", t.class_weighting,
             "none or inverse_sqrt")  # fmt: skip
    _require(t.slidemix_gamma >= 1, "training.slidemix_gamma", t.slidemix_gamma, ">= 1")
    _require(0 < t.slidemix_beta <= 1, "training.slidemix_beta", t.slidemix_beta, "in (0, 1]")
    _require(t.overlays_every >= 1, "training.overlays_every", t.overlays_every, ">= 1")


def _validate_blending(threshold: float, overlap: int, window: int, blend: str, batch_size: int) -> None:
    _require(0 < threshold < 1, "evaluation.threshold", threshold, "between 0 and 1")
    _require(0 <= overlap < window, "evaluation.overlap", overlap, f"in [0, the window of {window})")
    _require(blend in BLEND_MODES, "evaluation.blend", blend, f"one of {', '.join(BLEND_MODES)}")
    _require(batch_size >= 1, "evaluation.batch_size", batch_size, ">= 1")


def _validate_cloudmask(cfg: CloudMaskConfig) -> None:
    d, m, e = cfg.data, cfg.model, cfg.evaluation
    _require(1 <= cfg.seeds <= 100, "seeds", cfg.seeds, "between 1 and 100")
    _require(d.source in ("download", "synthetic", "local"), "data.source", d.source, "download, synthetic or local")
    _require(d.max_files is None or d.max_files >= 2, "data.max_files", d.max_files, "None or >= 2")
    _require(re.fullmatch(r"[1-9][0-9]*(Mi|Gi|Ti)", d.disk) is not None, "data.disk", d.disk, "a size such as 320Gi")
    _require(d.synthetic_train_files >= 2, "data.synthetic_train_files", d.synthetic_train_files, ">= 2")
    _require(d.synthetic_test_files >= 1, "data.synthetic_test_files", d.synthetic_test_files, ">= 1")
    _require(0 < d.val_fraction < 1, "data.val_fraction", d.val_fraction, "between 0 and 1")
    _require(m.normalization == "cloudmask", "model.normalization", m.normalization, "cloudmask for CloudMask data")
    _validate_segmentation_training(m, cfg.training)
    _validate_blending(e.threshold, e.overlap, 256, e.blend, e.batch_size)


def labelled_fractions(semi: SemiSupervisedConfig) -> list[float]:
    """``semi.fractions`` as numbers: ``"1/16,0.25,1"`` -> ``[0.0625, 0.25, 1.0]``.

    Raises:
        ConfigError: If one is not a number or ratio between 0 and 1.
    """
    values = []
    for text in semi.fractions.split(","):
        num, _, den = text.strip().partition("/")
        try:
            value = float(num) / float(den) if den else float(num)
        except (ValueError, ZeroDivisionError):
            value = -1.0
        _require(0 < value <= 1, "semi.fractions", semi.fractions, "shares in (0, 1] such as 1/16,1/8,1")
        values.append(value)
    return values


def _validate_semi(cfg: SemiConfig) -> None:
    m = cfg.semi
    _require(1 <= cfg.seeds <= 100, "seeds", cfg.seeds, "between 1 and 100")
    labelled_fractions(m)
    _require(m.split_by in ("patch", "scene"), "semi.split_by", m.split_by, "patch or scene")
    _require(m.method in ("fixmatch", "unimatch"), "semi.method", m.method, "fixmatch or unimatch")
    _require(0.5 <= m.threshold < 1, "semi.threshold", m.threshold, "in [0.5, 1)")
    _require(m.ema_decay is None or 0 < m.ema_decay < 1, "semi.ema_decay", m.ema_decay, "None or in (0, 1)")
    _require(0 <= m.unlabelled_scenes <= 1000, "semi.unlabelled_scenes", m.unlabelled_scenes, "between 0 and 1000")
    if m.unlabelled_scenes and cfg.data.source != "synthetic":
        raise ConfigError("semi.unlabelled_scenes generates synthetic scenes; with real data use --unlabelled-dir PATH")


def _validate_segmentation(cfg: SegmentationConfig) -> None:
    d, m, t, e = cfg.data, cfg.model, cfg.training, cfg.evaluation
    _require(d.source in ("local", "synthetic"), "data.source", d.source, "local or synthetic")
    _require(d.synthetic_train_scenes >= 2, "data.synthetic_train_scenes", d.synthetic_train_scenes, ">= 2")
    _require(d.synthetic_test_scenes >= 1, "data.synthetic_test_scenes", d.synthetic_test_scenes, ">= 1")
    _require(d.synthetic_size >= 64, "data.synthetic_size", d.synthetic_size, ">= 64")
    _require(d.patch_size % 32 == 0 and 32 <= d.patch_size <= 1024, "data.patch_size", d.patch_size,
             "a multiple of 32 between 32 and 1024")  # fmt: skip
    _require(0 <= d.overlap < d.patch_size, "data.overlap", d.overlap, f"in [0, data.patch_size={d.patch_size})")
    _require(0 <= d.min_valid_fraction <= 1, "data.min_valid_fraction", d.min_valid_fraction, "in [0, 1]")
    _require(0 < d.val_fraction < 1, "data.val_fraction", d.val_fraction, "between 0 and 1")
    _require(m.normalization in ("percentile", "fixed"), "model.normalization", m.normalization, "percentile or fixed")
    _validate_segmentation_training(m, t)
    _require(e.window % 32 == 0 and e.window >= 32, "evaluation.window", e.window, "a multiple of 32")
    _validate_blending(e.threshold, e.overlap, e.window, e.blend, e.batch_size)


def _validate_described(cfg: DescribedConfig) -> None:
    d, m, e = cfg.data, cfg.model, cfg.evaluation
    _require(1 <= cfg.seeds <= 100, "seeds", cfg.seeds, "between 1 and 100")
    _require(d.source in ("local", "synthetic"), "data.source", d.source, "local or synthetic")
    _require(d.synthetic_train_scenes >= 2, "data.synthetic_train_scenes", d.synthetic_train_scenes, ">= 2")
    _require(d.synthetic_test_scenes >= 1, "data.synthetic_test_scenes", d.synthetic_test_scenes, ">= 1")
    _require(d.synthetic_size >= 64, "data.synthetic_size", d.synthetic_size, ">= 64")
    _require(d.patch_size % 32 == 0 and 32 <= d.patch_size <= 1024, "data.patch_size", d.patch_size,
             "a multiple of 32 between 32 and 1024")  # fmt: skip
    _require(0 <= d.overlap < d.patch_size, "data.overlap", d.overlap, f"in [0, data.patch_size={d.patch_size})")
    _require(0 <= d.min_valid_fraction <= 1, "data.min_valid_fraction", d.min_valid_fraction, "in [0, 1]")
    _require(0 < d.val_fraction < 1, "data.val_fraction", d.val_fraction, "between 0 and 1")
    _require(0 < d.test_fraction < 1, "data.test_fraction", d.test_fraction, "between 0 and 1")
    _require(m.normalization in ("percentile", "fixed"), "model.normalization", m.normalization, "percentile or fixed")
    _validate_segmentation_training(m, cfg.training)
    _require(e.window % 32 == 0 and e.window >= 32, "evaluation.window", e.window, "a multiple of 32")
    _validate_blending(0.5, e.overlap, e.window, e.blend, e.batch_size)


def _validate_classification(cfg: ClassificationConfig) -> None:
    d, m, t = cfg.data, cfg.model, cfg.training
    _require(d.source in ("download", "synthetic", "local"), "data.source", d.source, "download, synthetic or local")
    _require(d.bands in ("rgb", "ms"), "data.bands", d.bands, "rgb or ms")
    _require(d.synthetic_per_class >= 5, "data.synthetic_per_class", d.synthetic_per_class, ">= 5")
    _require(0 < d.train_fraction < 1, "data.train_fraction", d.train_fraction, "between 0 and 1")
    _require(0 < d.val_fraction < 1, "data.val_fraction", d.val_fraction, "between 0 and 1")
    _require(
        d.train_fraction + d.val_fraction < 1,
        "data.train_fraction + data.val_fraction",
        d.train_fraction + d.val_fraction,
        "< 1 so that a test split remains",
    )
    _require(d.max_per_class is None or d.max_per_class >= 5, "data.max_per_class", d.max_per_class, "None or >= 5")
    _require(bool(m.backbone), "model.backbone", m.backbone, "a timm model name")
    _require(0 <= m.drop_rate < 1, "model.drop_rate", m.drop_rate, "in [0, 1)")
    _require(m.input_size is None or 16 <= m.input_size <= 1024, "model.input_size", m.input_size, "None or 16..1024")
    _require(
        0 <= t.phase1_epochs <= t.epochs,
        "training.phase1_epochs",
        t.phase1_epochs,
        f"between 0 and training.epochs ({t.epochs})",
    )
    for key in ("phase1_lr", "phase2_lr", "backbone_lr_ratio"):
        value = getattr(t, key)
        _require(0 < value < 10, f"training.{key}", value, "> 0 (and < 10)")
    _require(t.warmup_steps >= 0, "training.warmup_steps", t.warmup_steps, ">= 0")
    _require(0 <= t.label_smoothing < 1, "training.label_smoothing", t.label_smoothing, "in [0, 1)")
    _require(t.tsne_every >= 1, "training.tsne_every", t.tsne_every, ">= 1")


def to_dict(cfg: Any) -> dict[str, Any]:
    """The config as plain JSON-able data (secrets are never part of a config)."""
    return dataclasses.asdict(cfg)


def save_config(cfg: Any, path: Path) -> None:
    """Write the resolved config as JSON."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n")
