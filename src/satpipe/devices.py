"""Whether this machine can run the GPUs a task asked for, and in one line why not.

A GPU pod whose NVIDIA driver is older than the CUDA build of torch sees no GPU at all, and Lightning's
``accelerator="auto"`` then trains on the CPU for hours without a word. Tasks that asked for GPUs on a
cluster call :func:`require_gpus` first, so such a pod fails at once and says which driver it has.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from satpipe.errors import GpuUnavailableError

#: The oldest Linux driver that runs each CUDA major version (NVIDIA's minor version compatibility): torch
#: built for any CUDA 13.x needs driver 580 or newer.
MIN_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}
#: Where the kernel module states its version when nvidia-smi is not in the image.
PROC_VERSION = Path("/proc/driver/nvidia/version")


def nvidia_driver() -> tuple[str | None, str | None]:
    """The NVIDIA driver's version and the newest CUDA it runs, from nvidia-smi or else the kernel module.

    Returns:
        ``(driver, cuda)``; either is None where nothing says (no driver at all: both).
    """
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi], capture_output=True, text=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        if driver := re.search(r"Driver Version:\s*([\d.]+)", out):
            cuda = re.search(r"CUDA Version:\s*([\d.]+)", out)
            return driver[1], cuda[1] if cuda else None
    try:
        text = PROC_VERSION.read_text()
    except OSError:
        return None, None
    # "NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05  ..." (open modules: "Module for x86_64  ...")
    module = re.search(r"Kernel Module(?: for \S+)?\s+([\d.]+)", text)
    return (module[1] if module else None), None


def _torch_says() -> str:
    """Why torch cannot initialise CUDA, in its own words (one line), or "" when it can."""
    import torch

    try:
        torch.cuda.init()
    except Exception as e:  # RuntimeError or AssertionError, depending on the cause
        return " ".join(str(e).split())[:240]
    return ""


def require_gpus(request: str) -> None:
    """Stop unless this machine can run the GPUs that ``request`` (``TYPE:COUNT``, as ``resources.gpu``) asks for.

    Raises:
        GpuUnavailableError: Fewer usable GPUs than asked for; the message names the NVIDIA driver, the CUDA
            version torch was built for and the driver that needs.
    """
    import torch

    wanted = int(request.rpartition(":")[2] or 1)
    usable = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if usable >= wanted:
        return
    driver, driver_cuda = nvidia_driver()
    found = f"NVIDIA driver {driver}" if driver else "no NVIDIA driver (no nvidia-smi, no /proc/driver/nvidia/version)"
    if driver and driver_cuda:
        found += f" (runs CUDA up to {driver_cuda})"
    build = f"torch {torch.__version__} is a CPU-only build"
    if built := torch.version.cuda:
        build = f"torch {torch.__version__} is built for CUDA {built}"
        if needed := MIN_DRIVER.get(int(built.split(".")[0])):
            build += f", which needs driver >= {needed}"
    if not usable and (reason := _torch_says()):
        build += f"; torch says: {reason}"
    count = "1 GPU is" if usable == 1 else f"{usable} GPUs are"
    raise GpuUnavailableError(
        f"resources.gpu asks for {request} but {count} usable here: {found}; {build}; "
        "run on nodes whose driver is new enough (README: Run on Union)"
    )
