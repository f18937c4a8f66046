"""What real batches cross to the training device as: uint8 at the resolution the step trains at (pooled on the
host only in a growth phase below the data's resolution), pinned only for CUDA, converted to [-1, 1] on the device."""

import pytest
import torch
import torch.nn.functional as F

from facegen.train.config import resolve_config
from facegen.train.gans import GANTrainer, leaving_host
from facegen.train.growth import reals_at
from facegen.train.loop import start_run


def test_a_growing_run_sends_each_step_only_the_resolution_it_trains_at(
    face_folder, tmp_path, single_thread, monkeypatch
):
    crossed = []
    to_device = GANTrainer.to_device

    def spy(trainer, batch):
        images, _ = batch
        crossed.append((trainer.current_resolution, images.dtype, tuple(images.shape[-2:])))
        on_device, labels = to_device(trainer, batch)
        assert on_device.dtype == torch.float32 and -1 <= on_device.min() and on_device.max() <= 1
        return on_device, labels

    monkeypatch.setattr(GANTrainer, "to_device", spy)
    config = resolve_config(
        dict(
            arch="progan", data=str(face_folder), steps=3, phase_steps=1, batch=8, resolution=16, start_resolution=8,
            z_dim=16, fmap_base=64, fmap_max=16, checkpoint_every=3, sample_every=3,
            cache_dir=str(tmp_path / "cache"), out=str(tmp_path / "run"),
        )
    )  # fmt: skip
    assert start_run(config, config.out, progress=False).state == "finished"

    # steps: 8 px stable, 16 px fading in, 16 px stable; the data set is at 16 px
    assert set(crossed) == {(8, torch.float32, (8, 8)), (16, torch.uint8, (16, 16))}
    assert crossed[0][0] == 8 and crossed[-1][0] == 16


def test_pooled_reals_have_the_values_of_pooling_the_float_images_and_full_size_ones_stay_uint8():
    pixels = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    as_float = pixels.float() / 127.5 - 1

    assert reals_at(pixels, 16) is pixels
    assert torch.equal(reals_at(pixels, 8), F.avg_pool2d(as_float, 2))
    assert torch.equal(reals_at(pixels, 4), F.avg_pool2d(as_float, 4))


@pytest.mark.parametrize(("device", "pinned"), [("cpu", False), ("cuda", True), ("cuda:1", True)])
def test_host_memory_is_pinned_only_for_a_cuda_device(device, pinned, monkeypatch):
    pinned_tensors = []
    monkeypatch.setattr(torch.Tensor, "pin_memory", lambda tensor: pinned_tensors.append(tensor) or tensor)
    pixels = torch.zeros(2, 3, 8, 8, dtype=torch.uint8)

    assert leaving_host(pixels, torch.device(device)) is pixels
    assert [tensor is pixels for tensor in pinned_tensors] == ([True] if pinned else [])
