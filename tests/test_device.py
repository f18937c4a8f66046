"""The device rule and the precision policy as a user meets them: one clear line for what this machine lacks,
bfloat16 images within 40 dB PSNR of float32, and float32 unchanged."""

from pathlib import Path

import numpy as np
import pytest
import torch

from facegen import device as devices
from facegen.cli import main
from facegen.formats.nvidia_pickle import load_nvidia_generator
from facegen.generator import Generator, ModelInfo
from facegen.models import build_generator, get_architecture
from facegen.sampling import SampleRequest, recipe_for
from tests.media import psnr

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "nvidia"
NO_CUDA_LINE = "CUDA was requested (cuda) but this machine has no NVIDIA GPU/driver: use --device cpu or auto."


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture
def emulated_bfloat16(monkeypatch):
    monkeypatch.setattr(devices, "cpu_flags", lambda: frozenset({"avx512f"}))


def test_auto_is_a_device_this_machine_has():
    assert str(devices.resolve_device("auto")) in devices.available_devices()
    assert devices.available_devices()[-1] == "cpu"


@pytest.mark.parametrize(
    "requested, message",
    [
        ("cuda", NO_CUDA_LINE),
        ("cuda:1", "CUDA was requested (cuda:1)"),
        ("tpu", "Unknown device 'tpu': use auto, cpu, cuda, cuda:N or mps."),
    ],
)
def test_a_device_this_machine_lacks_is_one_clear_line(no_cuda, requested, message):
    with pytest.raises(devices.DeviceError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        devices.resolve_device(requested)


@pytest.mark.parametrize("command", ["sample", "video", "metrics"])
def test_cli_refuses_cuda_without_a_gpu_before_loading_anything(no_cuda, command, tmp_path, capsys):
    out = {"sample": "grid.png", "video": "walk.mp4", "metrics": None}[command]
    args = [command, "--model", "no-such-model", "--device", "cuda"]
    args += {"sample": ["--seeds", "0"], "video": ["--seeds", "1,2"], "metrics": ["--real", str(tmp_path)]}[command]
    args += ["--out", str(tmp_path / out)] if out else []
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == f"error: {NO_CUDA_LINE}"


def test_cli_refuses_emulated_bfloat16_and_cpu_float16(emulated_bfloat16, tmp_path, capsys):
    out = str(tmp_path / "grid.png")
    assert main(["sample", "--model", "x", "--seeds", "0", "--device", "cpu", "--precision", "bf16", "--out", out]) == 2
    assert "bfloat16 was requested but this CPU (no AVX512-BF16 or AMX) only emulates it" in capsys.readouterr().err
    assert main(["sample", "--model", "x", "--seeds", "0", "--device", "cpu", "--precision", "fp16", "--out", out]) == 2
    assert "float16 was requested but it runs fast only on a CUDA GPU" in capsys.readouterr().err


def test_train_refuses_cuda_without_a_gpu(no_cuda):
    from facegen.train.distributed import Distributed, choose_device

    with pytest.raises(devices.DeviceError, match="no NVIDIA GPU/driver"):
        choose_device("cuda", Distributed())


def tiny_stylegan2() -> torch.nn.Module:
    config_class = get_architecture("stylegan2").config_class
    return build_generator("stylegan2", config_class(img_resolution=16, channel_base=256, channel_max=32, num_fp16_res=2))


def test_auto_means_nvidia_float16_blocks_on_cuda_bfloat16_where_native_else_float32(monkeypatch):
    network, dcgan = tiny_stylegan2(), build_generator("dcgan", get_architecture("dcgan").config_class(resolution=32))
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    monkeypatch.setattr(devices, "has_native_bfloat16", lambda device: True)
    assert devices.choose_dtype("auto", cuda, network) == torch.float16
    assert devices.choose_dtype("auto", cuda, dcgan) == torch.bfloat16
    assert devices.choose_dtype("auto", cpu, network) == torch.bfloat16
    with pytest.raises(devices.DeviceError, match="no blocks NVIDIA runs in float16"):
        devices.choose_dtype("fp16", cuda, dcgan)
    monkeypatch.setattr(devices, "has_native_bfloat16", lambda device: False)
    assert devices.choose_dtype("auto", cpu, network) == torch.float32
    assert devices.choose_dtype("fp32", cpu, network) == torch.float32


def test_float16_runs_only_in_nvidia_float16_blocks_and_bfloat16_in_every_block():
    network = tiny_stylegan2()
    network.set_compute_dtype(torch.float16)
    assert {r: network.synthesis.get_submodule(f"b{r}").compute_dtype for r in (4, 8, 16)} == {
        4: torch.float32, 8: torch.float16, 16: torch.float16
    }
    network.set_compute_dtype(torch.bfloat16)
    assert {network.synthesis.get_submodule(f"b{r}").compute_dtype for r in (4, 8, 16)} == {torch.bfloat16}


def small_generators() -> dict[str, Generator]:
    torch.manual_seed(0)
    configs = {
        "dcgan": {"resolution": 32},
        "progan": {"resolution": 32},
        "stylegan2": {"img_resolution": 32, "channel_base": 1024, "channel_max": 64, "num_fp16_res": 2},
        "stylegan3": {"resolution": 32, "channel_base": 1024, "channel_max": 64, "num_layers": 6},
    }
    generators = {}
    for architecture, values in configs.items():
        config = get_architecture(architecture).config_class(**values)
        network = build_generator(architecture, config)
        for module in network.modules():  # trained-looking batch-norm statistics, so folding them matters
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 2)
        info = ModelInfo(architecture, architecture, config.z_dim, 32)
        generators[architecture] = Generator(network, info)
    for name in ("sg2", "ada", "sg3t", "sg3r"):
        generators[name] = load_nvidia_generator(FIXTURES / f"{name}.pkl")
    return generators


@pytest.mark.skipif(not devices.has_native_bfloat16(torch.device("cpu")), reason="this CPU emulates bfloat16")
@pytest.mark.parametrize("name", ["dcgan", "progan", "stylegan2", "stylegan3", "sg2", "ada", "sg3t", "sg3r"])
def test_bfloat16_images_are_within_40_db_of_float32_and_fp32_is_unchanged(name):
    generator = small_generators()[name]
    seeds = list(range(8))
    before = generator.sample(seeds=seeds, batch_size=8)
    reference = generator.set_precision("fp32").sample(seeds=seeds, batch_size=8)
    assert np.array_equal(before, reference)  # fp32 is what a Generator always computed
    low = generator.set_precision("bf16").sample(seeds=seeds, batch_size=8)
    single = generator.sample(seeds=[3], batch_size=1)
    assert not np.array_equal(low, reference)  # bfloat16 really ran
    assert psnr(reference, low) >= 40
    assert psnr(reference[3:4], single) >= 40
    assert np.array_equal(generator.set_precision("fp32").sample(seeds=seeds, batch_size=8), reference)


def test_recipe_records_device_and_precision():
    generator = small_generators()["dcgan"]
    recipe = recipe_for(generator, SampleRequest(model_spec="dcgan", seeds=[0]))
    assert (recipe["device"], recipe["precision"]) == ("cpu", "fp32")
