import torch

from facegen.inference import LatentProjection, prepare_for_inference
from facegen.models.dcgan import DCGANConfig, DCGANGenerator


def trained_looking_dcgan() -> DCGANGenerator:
    """A DCGAN whose batch-norm statistics are not the identity, as after training."""
    torch.manual_seed(0)
    network = DCGANGenerator(DCGANConfig(z_dim=16, generator_channels=8, resolution=64))
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    return network.eval()


def test_prepared_dcgan_matches_the_plain_module_within_1e_5():
    plain = trained_looking_dcgan()
    prepared = prepare_for_inference(plain)
    z = torch.randn(8, 16)
    with torch.inference_mode():
        assert (prepared(z) - plain(z)).abs().max() <= 1e-5
    assert not any(isinstance(module, torch.nn.BatchNorm2d) for module in prepared.modules())


def test_preparation_leaves_the_original_network_untouched():
    plain = trained_looking_dcgan()
    before = {name: tensor.clone() for name, tensor in plain.state_dict().items()}
    prepare_for_inference(plain)
    assert all(torch.equal(before[name], tensor) for name, tensor in plain.state_dict().items())


def test_the_latent_projection_is_the_transposed_convolution_of_a_vector_and_differentiates_like_it():
    prepared = prepare_for_inference(trained_looking_dcgan())
    projection = prepared.main[0]
    assert isinstance(projection, LatentProjection)
    convolution = torch.nn.ConvTranspose2d(16, projection.out_channels, 4)
    convolution.weight, convolution.bias = projection.weight, projection.bias
    z = torch.randn(8, 16, 1, 1, requires_grad=True)
    ours, theirs = projection(z), convolution(z)
    assert torch.allclose(ours, theirs, atol=1e-6)
    (gradient,) = torch.autograd.grad(ours.square().sum(), z)
    (expected,) = torch.autograd.grad(theirs.square().sum(), z)
    assert torch.allclose(gradient, expected, atol=1e-5)
    larger = torch.randn(2, 16, 3, 3)  # not a vector: the convolution itself
    assert torch.equal(projection(larger), convolution(larger))
