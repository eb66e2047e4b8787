"""Every pipeline in one module, for deploying them all: `flyte deploy workflows/all.py pipeline_env`.

A task joins its environment when its module is imported, and `flyte deploy FILE ENV` registers what
the file imported: deploying one pipeline's module would register that pipeline only.
"""

from __future__ import annotations

from envs import pipeline_env
from workflows.classification import classification_pipeline
from workflows.cloudmask import cloudmask_pipeline
from workflows.described import described_pipeline
from workflows.segmentation import segmentation_pipeline
from workflows.semi import semi_pipeline
from workflows.sweep import sweep_pipeline

__all__ = [
    "classification_pipeline",
    "cloudmask_pipeline",
    "described_pipeline",
    "pipeline_env",
    "segmentation_pipeline",
    "semi_pipeline",
    "sweep_pipeline",
]
