"""CloudMask training epoch at the benchmark's real shape: 19,400 patches of 256 x 256 x 9, reference U-Net.

Two set-ups train satpipe's Segmenter (the reference U-Net, the benchmark's normalisation, masked
BCE, Adam at 1e-3, batches of 32) on the same synthetic patches (throughput does not depend on content),
in the same run:

- baseline: fp32, channels first, eager, each batch copied from host memory (a plain PyTorch loop);
- tuned: bf16-mixed autocast (GPU only), channels_last, torch.compile, fused Adam, the whole training
  set resident on the device in fp32.

On a GPU the tuned set-up trains all 19,400 patches (45.8 GB resident) and the baseline cycles a host
pool of 2,048 of them. On a CPU, ``--patches`` (default 64) are trained and the epoch is extrapolated
to 19,400 patches. Each set-up trains one epoch to warm up (compilation, cuDNN autotuning); then the
two take turns, an epoch each per round (``--repeats``), and the ratio is taken within each round. On
a GPU, nvidia-smi is sampled meanwhile for how busy the GPU was. The NYU CloudMask study's V100 runs
took about 38 s per epoch; the target on one H100 is <= 4 s.

    uv run python bench/cloudmask_epoch.py                     # CPU: 64 patches, extrapolated
    uv run python bench/cloudmask_epoch.py --patches 19400     # GPU: the real epoch
    uv run python bench/cloudmask_epoch.py --smoke             # two patches, no torch.compile: checks the script
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import threading
import time
from collections.abc import Callable

import torch
from measure import add_options, check_repeats, interleaved, ratio_line, spread

from satpipe.io.cloudmask import BAND_NAMES, NORM_HIGH, NORM_LOW
from satpipe.training.segmentation import Segmenter, masked_cross_entropy

REAL_PATCHES, BATCH, SIDE, HOST_POOL = 19_400, 32, 256, 2048


def synthetic_patches(n: int, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw-unit images (n, 9, 256, 256) float32 around the benchmark's ranges, and 0/1 masks (n, 256, 256)."""
    low, span = (
        torch.tensor(NORM_LOW, device=device),
        torch.tensor(NORM_HIGH, device=device) - torch.tensor(NORM_LOW, device=device),
    )
    images = torch.empty(n, len(BAND_NAMES), SIDE, SIDE, device=device)
    for start in range(0, n, 512):  # chunks keep the temporary of the affine map small
        chunk = torch.rand(min(512, n - start), len(BAND_NAMES), SIDE, SIDE, device=device)
        images[start : start + len(chunk)] = chunk * span.view(1, -1, 1, 1) + (low - 0.5 * span).view(1, -1, 1, 1)
    return images, (torch.rand(n, SIDE, SIDE, device=device) > 0.6).to(torch.uint8)


class BusySampler:
    """Samples nvidia-smi's GPU utilisation every 100 ms while active."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, check=False)  # fmt: skip
            if out.returncode == 0:
                self.samples.append(float(out.stdout.split()[0]))

    def __enter__(self) -> BusySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mean(self) -> float | None:
        return statistics.mean(self.samples) if self.samples else None


def make_step(
    module: Segmenter, tuned: bool, compiled: bool, device: torch.device
) -> Callable[[torch.Tensor, torch.Tensor], None]:
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-3, fused=tuned and device.type == "cuda")
    model = torch.compile(module) if tuned and compiled else module
    autocast = tuned and device.type == "cuda"

    def step(x: torch.Tensor, mask: torch.Tensor) -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = masked_cross_entropy(model(x), mask)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def epoch(
    step: Callable[[torch.Tensor, torch.Tensor], None], batches: Callable[[], list], device: torch.device
) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for x, mask in batches():
        step(x, mask)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def setup(tuned: bool, patches: int, device: torch.device, compiled: bool, busy: list[float]) -> Callable[[], float]:
    """One set-up, warmed up by an epoch (compilation, autotuning): a measurement of one more epoch's seconds.

    On a GPU each measured epoch appends how busy the GPU was (percent) to ``busy``.
    """
    torch.manual_seed(0)
    module = Segmenter(arch="unet_cloudmask", band_names=list(BAND_NAMES), low=list(NORM_LOW),
                            high=list(NORM_HIGH), clip=False).to(device).train()  # fmt: skip
    if tuned:
        module = module.to(memory_format=torch.channels_last)
        images, masks = synthetic_patches(patches, device)
        images = images.contiguous(memory_format=torch.channels_last)

        def batches() -> list:
            order = torch.randperm(patches, device=device)
            return [(images[i], masks[i]) for i in order.split(BATCH)]
    else:
        host_images, host_masks = synthetic_patches(min(patches, HOST_POOL), "cpu")

        def batches() -> list:
            order = torch.randperm(patches) % len(host_images)
            return ((host_images[i].to(device), host_masks[i].to(device)) for i in order.split(BATCH))  # type: ignore[return-value]

    step = make_step(module, tuned, compiled, device)
    epoch(step, batches, device)

    def measure() -> float:
        if device.type != "cuda":
            return epoch(step, batches, device)
        with BusySampler() as sampler:
            seconds = epoch(step, batches, device)
        if (mean := sampler.mean()) is not None:
            busy.append(mean)
        return seconds

    return measure


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--patches", type=int, default=REAL_PATCHES if device.type == "cuda" else 64)
    add_options(parser)
    args = parser.parse_args()
    check_repeats(parser, args)
    patches = 2 if args.smoke else args.patches
    compiled = not args.smoke  # compiling takes minutes on a CPU; the smoke run checks the rest
    device_name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    without = "" if compiled else ", tuned without torch.compile"
    print(f"device {device_name}, {patches} patches, batch {BATCH}{without}")
    torch.backends.cudnn.benchmark = True
    busy: dict[str, list[float]] = {"baseline": [], "tuned": []}
    setups = {name: setup(name == "tuned", patches, device, compiled, busy[name]) for name in ("baseline", "tuned")}
    seconds = interleaved(setups, args.repeats)
    scale = REAL_PATCHES / patches
    for name, values in seconds.items():
        where = "" if patches == REAL_PATCHES else f" (extrapolated from {patches} patches)"
        gpu = f", GPU busy {statistics.median(busy[name]):.0f}%" if busy[name] else ""
        print(f"{name:>9}: s per epoch of {REAL_PATCHES} patches {spread([v * scale for v in values], '{:.2f}')}"
              f"{where}{gpu}")  # fmt: skip
    print(ratio_line("tuned/baseline epoch time", seconds["tuned"], seconds["baseline"]))
    tuned = statistics.median(seconds["tuned"]) * scale
    print(f"median tuned epoch vs the NYU V100 runs (~38 s): {tuned / 38:.2f}; target on one H100: <= 4 s")


if __name__ == "__main__":
    main()
