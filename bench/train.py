"""DCGAN 64x64 training speed on the CPU: facegen's training step against the PyTorch DCGAN tutorial's loop.

Both sides train the same networks (facegen.models.dcgan is the tutorial's Generator and Discriminator; the
tutorial's discriminator ends in a sigmoid, added here) at batch 128 on the same folder of JPEG faces this script
writes, with Adam(2e-4, betas (0.5, 0.999)).

- tutorial: torchvision ImageFolder with Resize, CenterCrop, ToTensor, Normalize; DataLoader(batch 128, shuffle,
  2 workers); BCELoss on sigmoid outputs; D on real and D on fake with a backward each; D's weight gradients also
  computed during the generator's step; the per-step D(x) / D(G(z)) statistics read with .item().
- facegen float32: the trainer `facegen.train.gans.build_trainer` composes for `dcgan`, fed from facegen.data's decoded uint8 cache with `--no-amp`,
  i.e. the tutorial's arithmetic: frozen D during the generator's step, channels-last layout, no data workers.
- facegen default: the same with the default settings, which add bfloat16 autocast where the CPU computes
  bfloat16 natively (AVX512-BF16 or AMX); float32 weights, optimizer and losses.

The three are timed in turns, ROUNDS times, each for STEPS steps after a warm-up step; the best round of each is
reported, so a burst of load from other processes hits all sides alike. Run: python -m bench.train
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from bench.common import matmul_peak_gflops
from facegen.models.dcgan import DCGANConfig, DCGANDiscriminator, DCGANGenerator, init_dcgan_weights
from facegen.train import distributed
from facegen.train.config import resolve_config
from facegen.train.gans import build_trainer, has_native_bfloat16
from facegen.train.loop import BatchOrder, step_noise

BATCH = 128
RESOLUTION = 64
IMAGE_COUNT = 512  # 4 batches: an epoch holds the warm-up step and 3 timed steps
LEARNING_RATE = 2e-4
BETAS = (0.5, 0.999)


def write_jpeg_faces(folder: Path, count: int, seed: int = 0) -> Path:
    """Face-like pictures (skin ellipse, eyes, mouth, noise) as 64x64 JPEGs in an ImageFolder-style class folder."""
    images = folder / "faces"
    images.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:RESOLUTION, 0:RESOLUTION] / RESOLUTION
    for index in range(count):
        picture = np.empty((RESOLUTION, RESOLUTION, 3))
        picture[:] = rng.uniform(0, 120, 3)
        centre_x, centre_y = 0.5 + rng.uniform(-0.06, 0.06, 2)
        picture[((x - centre_x) / 0.3) ** 2 + ((y - centre_y) / 0.38) ** 2 < 1] = rng.uniform(140, 255, 3)
        for eye_x in (centre_x - 0.12, centre_x + 0.12):
            picture[((x - eye_x) / 0.05) ** 2 + ((y - centre_y + 0.08) / 0.04) ** 2 < 1] = 30
        picture[(np.abs(x - centre_x) < 0.1) & (np.abs(y - centre_y - 0.15) < 0.02)] = 60
        picture += rng.normal(0, 8, picture.shape)
        Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(images / f"{index:05d}.jpg", quality=90)
    return folder


def tutorial_loop(data_root: Path) -> Callable[[int], None]:
    """The PyTorch DCGAN tutorial's training loop, as it writes it; returns 'train N steps'."""
    import torchvision.datasets as dset
    import torchvision.transforms as transforms

    dataset = dset.ImageFolder(
        root=str(data_root),
        transform=transforms.Compose(
            [
                transforms.Resize(RESOLUTION),
                transforms.CenterCrop(RESOLUTION),
                transforms.ToTensor(),
                transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
            ]
        ),
    )
    dataloader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=2)
    config = DCGANConfig()
    netG, discriminator = DCGANGenerator(config), DCGANDiscriminator(config)
    netG.apply(init_dcgan_weights)
    discriminator.apply(init_dcgan_weights)
    netD = nn.Sequential(discriminator, nn.Sigmoid())  # the tutorial's D ends in nn.Sigmoid()
    criterion = nn.BCELoss()
    optimizerD = torch.optim.Adam(netD.parameters(), lr=LEARNING_RATE, betas=BETAS)
    optimizerG = torch.optim.Adam(netG.parameters(), lr=LEARNING_RATE, betas=BETAS)
    real_label, fake_label = 1.0, 0.0
    batches = iter(())
    statistics = []  # the tutorial keeps G_losses and D_losses and prints D(x), D(G(z)) as it goes

    def train(steps: int) -> None:
        nonlocal batches
        for _ in range(steps):
            data = next(batches, None)
            if data is None:  # a new epoch, as the tutorial's `for epoch ...: for data in dataloader`
                batches = iter(dataloader)
                data = next(batches)
            netD.zero_grad()
            real_cpu = data[0]
            b_size = real_cpu.size(0)
            label = torch.full((b_size,), real_label, dtype=torch.float)
            output = netD(real_cpu).view(-1)
            errD_real = criterion(output, label)
            errD_real.backward()
            D_x = output.mean().item()
            noise = torch.randn(b_size, config.z_dim)
            fake = netG(noise)
            label.fill_(fake_label)
            output = netD(fake.detach()).view(-1)
            errD_fake = criterion(output, label)
            errD_fake.backward()
            D_G_z1 = output.mean().item()
            errD = errD_real + errD_fake
            optimizerD.step()
            netG.zero_grad()
            label.fill_(real_label)
            output = netD(fake).view(-1)
            errG = criterion(output, label)
            errG.backward()
            D_G_z2 = output.mean().item()
            optimizerG.step()
            statistics.append((errG.item(), errD.item(), D_x, D_G_z1, D_G_z2))

    return train


def facegen_loop(data_root: Path, cache_dir: Path, amp: bool) -> Callable[[int], None]:
    """facegen's own step (the one `facegen train --arch dcgan` runs) on the decoded-image cache."""
    from facegen.data import open_dataset

    config = resolve_config(dict(arch="dcgan", data=str(data_root), steps=1, batch=BATCH, resolution=RESOLUTION, amp=amp))
    dataset = open_dataset(config.data, RESOLUTION, cache_dir=cache_dir, progress=False)
    trainer = build_trainer(config, torch.device("cpu"), distributed.Distributed())
    order = BatchOrder(len(dataset), BATCH, config.seed, config.mirror)
    step = 0

    def train(steps: int) -> None:
        nonlocal step
        for _ in range(steps):
            step += 1
            batch = trainer.to_device(trainer.host_batch(dataset.batch(*order.batch_indices(step - 1))))
            trainer.train_step([batch], step_noise(config.seed, step, 0, trainer.device))

    return train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="turns per side; the best is reported")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per turn (at most 3: one epoch)")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch CPU threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as scratch:
        data_root = write_jpeg_faces(Path(scratch) / "jpegs", IMAGE_COUNT)
        sides = {
            "tutorial loop": tutorial_loop(data_root),
            "facegen, float32": facegen_loop(data_root, Path(scratch) / "cache", amp=False),
            "facegen, default": facegen_loop(data_root, Path(scratch) / "cache", amp=True),
        }
        best = {name: float("inf") for name in sides}
        for _ in range(args.rounds):
            for name, train in sides.items():
                train(1)  # warm-up: the tutorial's workers start, oneDNN picks its kernels
                start = time.perf_counter()
                train(args.steps)
                best[name] = min(best[name], (time.perf_counter() - start) / args.steps)
    bfloat16 = "bfloat16 autocast" if has_native_bfloat16(torch.device("cpu")) else "float32 (no native bfloat16 here)"
    print(f"DCGAN {RESOLUTION}x{RESOLUTION}, batch {BATCH}, {IMAGE_COUNT} JPEGs, {args.threads} threads, "
          f"best of {args.rounds} x {args.steps} steps; fp32 matmul peak now {matmul_peak_gflops():.0f} GFLOP/s")  # fmt: skip
    baseline = BATCH / best["tutorial loop"]
    for name, seconds in best.items():
        images_per_second = BATCH / seconds
        note = f"  ({bfloat16})" if name == "facegen, default" else ""
        print(f"{name:18s} {images_per_second:7.1f} img/s  {seconds:6.2f} s/step  x{images_per_second / baseline:.2f}{note}")


if __name__ == "__main__":
    main()
