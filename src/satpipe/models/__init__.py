"""Model architectures: timm classifiers and a registry of segmentation networks.

Importing this package registers every segmentation architecture.
"""

from satpipe.models import satunet, timm_unet, unet  # noqa: F401  (registers the architectures)
from satpipe.models._registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
