"""Reading NVIDIA network pickles as data: structure, tensors and constructor facts of the real-format fixtures."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from facegen.errors import CorruptFileError
from facegen.formats.nvidia_pickle import (
    PersistentModule,
    describe_network,
    generator_family,
    load_nvidia_generator,
    read_network_pickle,
)
from tests.formats.nvidia_pickle_forge import forge, reference_state_dict, take_apart, write_torch_zip

FIXTURES = Path(__file__).parents[1] / "fixtures" / "nvidia"
NAMES = ("ada", "sg2", "sg3r", "sg3t")
STYLEGAN2 = ("ada", "sg2")
STYLEGAN3 = ("sg3r", "sg3t")


def fixture_path(name: str) -> Path:
    return FIXTURES / f"{name}.pkl"


def facts(name: str) -> dict:
    """The construction facts NVIDIA's code was given (NAME.json), G kwargs flattened as the StyleGAN3 repo has them."""
    recorded = json.loads((FIXTURES / f"{name}.json").read_text())
    nested = ("class_name", "synthesis_kwargs")
    g_kwargs = {key: value for key, value in recorded["G_kwargs"].items() if key not in nested}
    g_kwargs |= recorded["G_kwargs"].get("synthesis_kwargs", {})
    return recorded | {"flat_g_kwargs": g_kwargs}


@pytest.fixture(scope="module", params=NAMES)
def snapshot(request: pytest.FixtureRequest) -> tuple[str, dict]:
    return request.param, read_network_pickle(fixture_path(request.param))


def assert_same_data(ours: object, theirs: object, where: str) -> None:
    assert type(ours) is type(theirs), where
    if isinstance(ours, PersistentModule):
        assert ours.class_name == theirs.class_name, where
        assert ours.module_src_sha256 == theirs.module_src_sha256, where
        assert_same_data(ours.attributes, theirs.attributes, f"{where} attributes")
        assert_same_data(ours.init_args, theirs.init_args, f"{where} init_args")
        assert_same_data(ours.init_kwargs, theirs.init_kwargs, f"{where} init_kwargs")
        assert_same_data(ours.parameters, theirs.parameters, f"{where} parameters")
        assert_same_data(ours.buffers, theirs.buffers, f"{where} buffers")
        assert_same_data(ours.modules, theirs.modules, f"{where} modules")
    elif isinstance(ours, dict):
        assert list(ours) == list(theirs), where
        for key in ours:
            assert_same_data(ours[key], theirs[key], f"{where}.{key}")
    elif isinstance(ours, (list, tuple)):
        assert len(ours) == len(theirs), where
        for index, (mine, other) in enumerate(zip(ours, theirs)):
            assert_same_data(mine, other, f"{where}[{index}]")
    elif isinstance(ours, torch.Tensor):
        assert ours.dtype == theirs.dtype and torch.equal(ours, theirs), where
    elif isinstance(ours, np.ndarray):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs), where
    else:
        assert ours == theirs, where


def test_snapshot_holds_every_network_as_a_persistent_module(snapshot: tuple[str, dict]) -> None:
    name, networks = snapshot
    assert list(networks) == ["G", "D", "G_ema", "augment_pipe", "training_set_kwargs"]
    assert networks["G"].class_name == networks["G_ema"].class_name == "Generator"
    assert networks["D"].class_name == "Discriminator"
    assert networks["D"].state_dict(), "the discriminator's tensors are read too"
    if facts(name)["augment_p"] is not None:
        assert networks["augment_pipe"].class_name == "AugmentPipe"
        assert networks["augment_pipe"].attributes["xflip"] == 1.0
        assert networks["augment_pipe"].buffers["p"].item() == pytest.approx(facts(name)["augment_p"])
    else:
        assert networks["augment_pipe"] is None
    assert networks["training_set_kwargs"]["resolution"] == facts(name)["common_kwargs"]["img_resolution"]
    # The fixtures' module_src strings were all replaced by this one line; only its hash is kept.
    removed = hashlib.sha256(b"# module source removed from this fixture").hexdigest()
    assert {module.module_src_sha256 for _, module in networks["G_ema"].named_modules()} == {removed}


def test_g_is_not_g_ema(snapshot: tuple[str, dict]) -> None:
    """The fixtures' G got noise after G_ema was copied from it, so only G_ema reproduces the reference arrays."""
    _, networks = snapshot
    trained, averaged = networks["G"].state_dict(), networks["G_ema"].state_dict()
    assert list(trained) == list(averaged)
    assert not torch.equal(trained["mapping.w_avg"], averaged["mapping.w_avg"])
    assert sum(not torch.equal(trained[key], averaged[key]) for key in trained) > len(trained) // 2


def test_tensors_equal_torchs_own_reading_of_each_storage(snapshot: tuple[str, dict]) -> None:
    name, networks = snapshot
    raw = take_apart(fixture_path(name))
    for key in ("G_ema", "D"):
        expected = reference_state_dict(raw[key])
        ours = networks[key].state_dict()
        assert list(ours) == list(expected)
        for tensor_name, tensor in expected.items():
            assert ours[tensor_name].shape == tensor.shape and torch.equal(ours[tensor_name], tensor), tensor_name


def test_generator_attributes_and_description_match_the_construction_facts(snapshot: tuple[str, dict]) -> None:
    name, networks = snapshot
    recorded = facts(name)
    g = networks["G_ema"]
    for attribute in ("z_dim", "w_dim", "num_ws"):
        assert g.attributes[attribute] == recorded[attribute]
    for attribute, value in recorded["common_kwargs"].items():
        assert g.attributes[attribute] == value
    description = describe_network(g)
    family = "stylegan3" if "networks_stylegan3" in recorded["G_kwargs"]["class_name"] else "stylegan2"
    assert description["family"] == generator_family(g) == family
    variants = {"ada": "stylegan2-ada", "sg2": "stylegan2", "sg3r": "stylegan3-r", "sg3t": "stylegan3-t"}
    assert description["variant"] == variants[name]
    assert description["resolution"] == recorded["common_kwargs"]["img_resolution"]
    assert (description["z_dim"], description["w_dim"], description["c_dim"]) == (
        recorded["z_dim"],
        recorded["w_dim"],
        recorded["common_kwargs"]["c_dim"],
    )
    assert description["num_ws"] == recorded["num_ws"]
    assert description["mapping_layers"] == recorded["G_kwargs"]["mapping_kwargs"]["num_layers"]
    assert description["conv_clamp"] == recorded["flat_g_kwargs"].get("conv_clamp", 256)
    for key, value in recorded["flat_g_kwargs"].items():
        assert description["init_kwargs"][key] == value, key
    parameters = sum(t.numel() for _, m in g.named_modules() for t in m.parameters.values() if t is not None)
    assert description["num_parameters"] == parameters > 0


@pytest.mark.parametrize("name", STYLEGAN2)
def test_stylegan2_names_and_shapes(name: str) -> None:
    recorded = facts(name)
    settings = recorded["flat_g_kwargs"]
    g = read_network_pickle(fixture_path(name))["G_ema"]
    state = g.state_dict()
    w_dim, z_dim, resolution = recorded["w_dim"], recorded["z_dim"], recorded["common_kwargs"]["img_resolution"]

    def channels(block_resolution: int) -> int:
        return min(settings["channel_base"] // block_resolution, settings["channel_max"])

    for layer in range(recorded["G_kwargs"]["mapping_kwargs"]["num_layers"]):
        assert state[f"mapping.fc{layer}.weight"].shape == (w_dim, z_dim if layer == 0 else w_dim)
    assert state["mapping.w_avg"].shape == (w_dim,)
    assert state["mapping.w_avg"].abs().sum() > 0, "w_avg was perturbed to random values"
    assert not any(key.startswith("mapping.embed") for key in state), "unconditional: no class embedding"
    assert state["synthesis.b4.const"].shape == (channels(4), 4, 4)
    filter_1d = torch.tensor([1.0, 3.0, 3.0, 1.0])
    assert torch.allclose(state["synthesis.b4.resample_filter"], torch.outer(filter_1d, filter_1d) / 64)

    block_resolutions = [2**power for power in range(2, int(math.log2(resolution)) + 1)]
    for block_resolution in block_resolutions:
        block = f"synthesis.b{block_resolution}"
        out_channels = channels(block_resolution)
        convs = ["conv1"] if block_resolution == 4 else ["conv0", "conv1"]
        assert (f"{block}.conv0.weight" in state) == (block_resolution > 4)
        for conv in convs:
            in_channels = channels(block_resolution // 2) if conv == "conv0" else out_channels
            assert state[f"{block}.{conv}.weight"].shape == (out_channels, in_channels, 3, 3)
            assert state[f"{block}.{conv}.affine.weight"].shape == (in_channels, w_dim)
            assert state[f"{block}.{conv}.noise_const"].shape == (block_resolution, block_resolution)
            assert state[f"{block}.{conv}.noise_strength"].shape == ()
        assert state[f"{block}.torgb.weight"].shape == (3, out_channels, 1, 1)
        assert g.find(f"{block}.torgb").class_name == "ToRGBLayer"
        assert g.find(block).attributes["architecture"] == "skip"
    for key in state:
        assert re.fullmatch(r"mapping\.\w+(\.\w+)?|synthesis\.b(\d+)\..+", key), key
        block_match = re.match(r"synthesis\.b(\d+)\.", key)
        assert block_match is None or int(block_match.group(1)) in block_resolutions, key


@pytest.mark.parametrize("name", STYLEGAN3)
def test_stylegan3_layers_and_their_derived_attributes(name: str) -> None:
    recorded = facts(name)
    g = read_network_pickle(fixture_path(name))["G_ema"]
    synthesis = g.find("synthesis")
    state = g.state_dict()
    layer_names = synthesis.attributes["layer_names"]
    assert len(layer_names) == synthesis.attributes["num_layers"] + 1
    assert synthesis.attributes["output_scale"] == 0.25
    kernel = recorded["flat_g_kwargs"].get("conv_kernel", 3)
    previous_channels = g.find("synthesis.input").attributes["channels"]
    for index, layer_name in enumerate(layer_names):
        number, size, channels = map(int, re.fullmatch(r"L(\d+)_(\d+)_(\d+)", layer_name).groups())
        layer = synthesis.find(layer_name)
        is_last = index == len(layer_names) - 1
        assert number == index and layer.class_name == "SynthesisLayer"
        assert layer.attributes["is_torgb"] is is_last
        assert layer.attributes["in_channels"] == previous_channels
        assert layer.attributes["out_channels"] == channels
        out_size, padding = layer.attributes["out_size"], layer.attributes["padding"]
        assert isinstance(out_size, np.ndarray) and list(out_size) == [size, size]
        assert isinstance(layer.attributes["in_cutoff"], float) and isinstance(layer.attributes["use_fp16"], bool)
        assert len(padding) == 4 and all(isinstance(pad, int) for pad in padding)
        layer_kernel = 1 if is_last else kernel
        weight_shape = (channels, previous_channels, layer_kernel, layer_kernel)
        assert state[f"synthesis.{layer_name}.weight"].shape == weight_shape
        assert state[f"synthesis.{layer_name}.affine.weight"].shape == (previous_channels, recorded["w_dim"])
        assert state[f"synthesis.{layer_name}.magnitude_ema"].shape == ()
        assert (layer.buffers["up_filter"] is None) is is_last
        assert (f"synthesis.{layer_name}.up_filter" in state) is not is_last, "None buffers are left out"
        previous_channels = channels
    radial = [synthesis.find(layer_name).attributes["down_radial"] for layer_name in layer_names]
    assert any(radial) is recorded["flat_g_kwargs"].get("use_radial_filters", False)

    input_layer = synthesis.find("input")
    channels = input_layer.attributes["channels"]
    assert state["synthesis.input.weight"].shape == (channels, channels)
    assert state["synthesis.input.freqs"].shape == (channels, 2)
    assert state["synthesis.input.phases"].shape == (channels,)
    assert input_layer.attributes["size"].dtype == np.int64
    transform = state["synthesis.input.transform"]
    # The fixture set the transform to a 10-degree rotation with a translation.
    assert torch.allclose(transform[2], torch.tensor([0.0, 0.0, 1.0]))
    assert math.degrees(math.acos(transform[0, 0])) == pytest.approx(10.0, abs=1e-4)
    assert torch.linalg.det(transform[:2, :2]) == pytest.approx(1.0, abs=1e-6)


def test_state_dict_and_find_walk_the_module_tree() -> None:
    g = read_network_pickle(fixture_path("sg2"))["G_ema"]
    conv = g.find("synthesis.b8.conv0")
    assert conv.class_name == "SynthesisLayer" and g.find("") is g
    assert conv.state_dict()["weight"] is g.state_dict()["synthesis.b8.conv0.weight"]
    assert conv.init_kwargs["up"] == 2 and conv.attributes["up"] == 2
    assert isinstance(g.find("mapping").init_kwargs, dict)
    with pytest.raises(CorruptFileError, match=r"no module 'synthesis\.b8\.conv7'"):
        g.find("synthesis.b8.conv7")


@pytest.mark.parametrize(("protocol", "options"), [(2, {}), (3, {}), (4, {}), (5, {"real_numpy": True})])
def test_older_spellings_read_identically(tmp_path: Path, protocol: int, options: dict) -> None:
    """NVIDIA's releases were written by Python 3.7 (protocol 3), NumPy 1 (numpy.core) and older pickles (2)."""
    original = read_network_pickle(fixture_path("sg3r"))
    old_spelling = forge(
        take_apart(fixture_path("sg3r")),
        protocol=protocol,
        rename={"numpy._core.multiarray": "numpy.core.multiarray"},
        **options,
    )
    if protocol < 4:
        assert b"numpy.core.multiarray\n_reconstruct" in old_spelling and b"numpy._core" not in old_spelling
        assert (b"__builtin__\nset" if protocol == 2 else b"builtins\nset") in old_spelling
    if protocol == 2:
        assert b"_codecs\nencode" in old_spelling
    if options:
        assert b"_frombuffer" in old_spelling
    path = tmp_path / "old.pkl"
    path.write_bytes(old_spelling)
    assert_same_data(read_network_pickle(path), original, "snapshot")


def test_a_torch_zip_of_the_same_snapshot_reads_identically(tmp_path: Path) -> None:
    path = tmp_path / "snapshot.pt"
    write_torch_zip(path, take_apart(fixture_path("ada")))
    assert path.read_bytes()[:4] == b"PK\x03\x04"
    assert_same_data(read_network_pickle(path), read_network_pickle(fixture_path("ada")), "snapshot")


def test_missing_snapshot_keys_read_as_none_like_nvidias_loader(tmp_path: Path) -> None:
    raw = take_apart(fixture_path("sg3t"))
    path = tmp_path / "g_ema_only.pkl"
    path.write_bytes(forge({"G_ema": raw["G_ema"]}))
    networks = read_network_pickle(path)
    assert networks["G_ema"].class_name == "Generator"
    assert networks["G"] is networks["D"] is networks["augment_pipe"] is networks["training_set_kwargs"] is None


def test_a_snapshot_whose_g_ema_is_not_a_generator_is_refused_before_conversion(tmp_path: Path) -> None:
    raw = take_apart(fixture_path("sg2"))
    path = tmp_path / "swapped.pkl"
    path.write_bytes(forge({"G": raw["D"], "G_ema": raw["D"]}))
    with pytest.raises(CorruptFileError, match="is a Discriminator, not a Generator"):
        load_nvidia_generator(path)


def test_a_torch_checkpoint_without_networks_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"weight": torch.ones(2, 2)}, path)
    with pytest.raises(CorruptFileError, match=r"plain\.pt has no 'G_ema' or 'G' network \(keys: 'weight'\)"):
        read_network_pickle(path)
