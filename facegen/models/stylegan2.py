"""StyleGAN2 generator (Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020).

Written from the paper and the contents of NVIDIA's published networks, not from NVIDIA's code. Parameter and
buffer names are NVIDIA's (`mapping.fc0.weight`, `synthesis.b8.conv0.affine.bias`, `noise_const`, ...), so their
networks load by name; the resampling filter is a config value instead of per-layer buffers.

    z [N, z_dim] (+ label c) --mapping--> w [N, w_dim] --broadcast, truncation--> ws [N, num_ws, w_dim]
    ws --synthesis: const 4x4, then per resolution [2x up-conv], conv, ToRGB--> image [N, img_channels, R, R]

Every convolution is modulated by a style (an affine map of one w) and demodulated (paper section 2.2); noise,
bias, leaky ReLU and an optional clamp follow. The default 'skip' architecture sums the up-sampled ToRGB outputs
of all resolutions (paper figure 7b); 'orig' and 'resnet' only have a ToRGB at the end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from facegen.models.architecture import Architecture

ARCHITECTURES = ("skip", "orig", "resnet")
LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2)  # keeps activations at unit variance after leaky ReLU
DEMODULATION_EPSILON = 1e-8


@dataclass(frozen=True)
class StyleGAN2Config:
    z_dim: int = 512
    c_dim: int = 0  # label size; 0 for unconditional networks
    w_dim: int = 512
    img_resolution: int = 1024
    img_channels: int = 3
    mapping_layers: int = 8
    mapping_lr_multiplier: float = 0.01  # the mapping network's weights are stored / lr_multiplier
    embed_features: int | None = None  # width of the label embedding (None: w_dim)
    layer_features: int | None = None  # width of the hidden mapping layers (None: w_dim)
    channel_base: int = 32768  # channels at resolution R: min(channel_base // R, channel_max)
    channel_max: int = 512
    conv_clamp: float | None = 256  # clamp every convolution output to +-conv_clamp; None: no clamp
    architecture: str = "skip"  # 'skip' | 'orig' | 'resnet'
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)  # 1-D taps of the separable up-sampling low-pass filter
    use_noise: bool = True
    num_fp16_res: int = 0  # the top N resolutions' blocks are the ones NVIDIA runs in float16 on CUDA

    def __post_init__(self) -> None:
        if self.img_resolution < 4 or self.img_resolution & (self.img_resolution - 1):
            raise ValueError(f"img_resolution must be a power of two >= 4, not {self.img_resolution}")
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {self.architecture!r}")
        if self.mapping_layers < 1:
            raise ValueError("the mapping network needs at least one layer")
        if self.z_dim + self.c_dim == 0:
            raise ValueError("a generator needs a latent (z_dim > 0), a label (c_dim > 0), or both")

    @property
    def block_resolutions(self) -> list[int]:
        return [2**i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    def channels(self, resolution: int) -> int:
        return min(self.channel_base // resolution, self.channel_max)

    @property
    def num_ws(self) -> int:
        # one w per convolution (1 at 4x4, 2 above) plus one for the final ToRGB; other ToRGBs share the next w
        return 2 * len(self.block_resolutions)

    def uses_fp16(self, resolution: int) -> bool:
        lowest = max(2 ** (len(self.block_resolutions) + 2 - self.num_fp16_res), 8)
        return self.num_fp16_res > 0 and resolution >= lowest


# ---------------------------------------------------------------------------------------------------------------
# Resampling and modulated convolution: the performance choices of this file live here; all of them keep the
# outputs equal to NVIDIA's within float error. bench/stylegan2.py times them against NVIDIA's grouped-convolution
# strategy (figures in bench/README.md).
#  - Activations are channels-last: oneDNN's transposed and depthwise convolutions run faster so.
#  - A modulated convolution of one image scales the weight (style, demodulation and gain folded in, written in
#    the layout oneDNN wants; no pass over the activations; the bias fuses into the convolution). For batches it
#    scales the activations, so one ordinary convolution with the shared weight serves the whole batch (no grouped
#    convolution), and demodulation becomes a per-sample, per-output-channel factor. Demodulation factors come
#    from rsqrt(styles² @ sum_k(weight²)ᵀ): the same numbers as demodulating the modulated weight.
#  - The 2x up-sampling convolution is a stride-2 transposed convolution followed by the low-pass filter at the
#    output rate as one depthwise convolution that also adds the bias.
#  - The leaky-ReLU gain is applied before the activation (it is positively homogeneous) by folding it into the
#    output scale and bias; noise, leaky ReLU and clamp then run in place. Fresh large tensors cost page faults,
#    so the epilogue never allocates.
# ---------------------------------------------------------------------------------------------------------------


def normalized_filter(taps: tuple[float, ...]) -> torch.Tensor:
    """1-D filter scaled to unit DC gain; the 2-D filter is its outer product with itself."""
    filter_1d = torch.tensor(taps, dtype=torch.float32)
    return filter_1d / filter_1d.sum()


def fir_filter(
    x: torch.Tensor, filter_1d: torch.Tensor, padding: tuple[int, int], bias: torch.Tensor | None = None
) -> torch.Tensor:
    """True convolution of every channel with outer(f, f) after zero-padding both axes by (before, after), plus an
    optional per-channel bias. Negative padding crops."""
    channels, taps = x.shape[1], len(filter_1d)
    kernel = torch.outer(filter_1d, filter_1d).flip((0, 1)).to(x.dtype).expand(channels, 1, taps, taps)
    before, after = padding
    if before == after and before >= 0:
        return F.conv2d(x, kernel, bias, padding=before, groups=channels)
    return F.conv2d(F.pad(x, [before, after, before, after]), kernel, bias, groups=channels)


def upsample2d(x: torch.Tensor, filter_1d: torch.Tensor) -> torch.Tensor:
    """2x up-sampling: insert a zero after every pixel, then low-pass filter with gain 4.

    Zero insertion followed by filtering is a stride-2 transposed convolution with the filter as kernel; the
    padding (taps + 1) // 2 before and (taps - 2) // 2 after keeps the output at exactly 2H x 2W.
    """
    channels, height, width = x.shape[1:]
    taps = len(filter_1d)
    kernel = (torch.outer(filter_1d, filter_1d) * 4).to(x.dtype).expand(channels, 1, taps, taps)
    x = F.conv_transpose2d(x, kernel, stride=2, groups=channels)
    start = taps - 1 - (taps + 1) // 2
    return x[:, :, start : start + 2 * height, start : start + 2 * width]


def convolution(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, up: bool, filter_1d: torch.Tensor
) -> torch.Tensor:
    """'Same' convolution with a [out, in, k, k] kernel, or 2x up-sampling convolution: a stride-2 transposed
    convolution (true-convolution semantics) and then the low-pass filter with gain 4, padded so the output is
    exactly 2H x 2W."""
    kernel_size = weight.shape[-1]
    if not up:
        return F.conv2d(x, weight, bias, padding=kernel_size // 2)
    taps = len(filter_1d)
    x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)  # [N, out, 2H + k - 2, 2W + k - 2]
    pad_before = kernel_size // 2 + (taps + 1) // 2 - (kernel_size - 1)
    pad_after = kernel_size // 2 + (taps - 2) // 2 - (kernel_size - 2)
    return fir_filter(x, filter_1d * 2, (pad_before, pad_after), bias)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    output_scale: torch.Tensor,
    bias: torch.Tensor,
    up: bool,
    filter_1d: torch.Tensor,
) -> torch.Tensor:
    """output_scale * conv(x, weight scaled by styles per input channel) + bias, per sample.

    x [N, in, H, W], weight [out, in, k, k], styles [N, in], output_scale [N, out] (demodulation and gains),
    bias [out]; result [N, out, H', W'].
    """
    if x.dtype == torch.float16:
        # NVIDIA's pre-normalisation against float16 overflow: demodulation is blind to the scale of the styles
        # and of each output channel's weights, so both are divided by their largest value and the output scale
        # takes the factors back.
        style_peak = styles.abs().amax(dim=1, keepdim=True)
        weight_peak = weight.abs().amax(dim=(1, 2, 3))
        styles, weight = styles / style_peak, weight / weight_peak.view(-1, 1, 1, 1)
        output_scale = output_scale * style_peak * weight_peak
    # Under autograd (projection) the activations are scaled even for one image: the styles' gradients then flow
    # through the activations and the convolution never computes a weight gradient.
    differentiable = torch.is_grad_enabled() and (x.requires_grad or styles.requires_grad)
    if x.shape[0] == 1 and not differentiable:
        # The kernel is written in the channels-last layout oneDNN works in, which saves it a copy.
        out_channels, in_channels, kernel_height, kernel_width = weight.shape
        if up:
            kernel = torch.empty(
                in_channels, out_channels, kernel_height, kernel_width, dtype=x.dtype, device=x.device,
                memory_format=torch.channels_last,
            ).transpose(0, 1)
        else:
            kernel = torch.empty_like(weight, dtype=x.dtype, memory_format=torch.channels_last)
        torch.mul(weight, styles.view(1, -1, 1, 1) * output_scale.view(-1, 1, 1, 1), out=kernel)
        return convolution(x, kernel, bias.to(x.dtype), up, filter_1d)
    # Scaling the input by 1/sqrt(fan_in) keeps float16 sums in range; the output scale undoes it.
    fan_in_gain = weight[0].numel() ** -0.5
    x = x * (styles * fan_in_gain).to(x.dtype)[:, :, None, None]
    x = convolution(x, weight.to(x.dtype), None, up, filter_1d)
    scale = (output_scale / fan_in_gain).to(x.dtype)[:, :, None, None]
    return torch.addcmul(bias.to(x.dtype).view(1, -1, 1, 1), x, scale, out=None if differentiable else x)


# ---------------------------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------------------------


class FullyConnected(nn.Module):
    """Linear layer with equalized learning rate: the weight is stored unit-scale / lr_multiplier and scaled by
    lr_multiplier / sqrt(in_features) at run time, the bias scaled by lr_multiplier."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        lr_multiplier: float = 1.0,
        bias_init: float = 0.0,
        activation: bool = False,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_multiplier)
        self.bias = nn.Parameter(torch.full((out_features,), float(bias_init)))
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.addmm(self.bias * self.bias_gain, x, self.weight.t(), alpha=self.weight_gain)
        if self.activation:
            x = F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN
        return x


def normalize_2nd_moment(x: torch.Tensor, epsilon: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + epsilon).rsqrt()


class MappingNetwork(nn.Module):
    """z (and the embedded label) -> w through `mapping_layers` leaky-ReLU layers; broadcast to num_ws copies."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        embed_features = (config.embed_features or config.w_dim) if config.c_dim else 0
        hidden_features = config.layer_features or config.w_dim
        widths = [config.z_dim + embed_features] + [hidden_features] * (config.mapping_layers - 1) + [config.w_dim]
        self.embed = FullyConnected(config.c_dim, embed_features) if config.c_dim else None
        for index in range(config.mapping_layers):
            layer = FullyConnected(widths[index], widths[index + 1], config.mapping_lr_multiplier, activation=True)
            setattr(self, f"fc{index}", layer)
        self.register_buffer("w_avg", torch.zeros(config.w_dim))  # the centre of W that truncation pulls towards

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        inputs = []
        if self.config.z_dim:
            inputs.append(normalize_2nd_moment(z.float()))
        if self.config.c_dim:
            if c is None:
                raise ValueError(f"this generator is conditional: pass c of shape [N, {self.config.c_dim}]")
            inputs.append(normalize_2nd_moment(self.embed(c.float())))
        x = torch.cat(inputs, dim=1)
        for index in range(self.config.mapping_layers):
            x = getattr(self, f"fc{index}")(x)
        ws = x.unsqueeze(1).repeat(1, self.config.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.config.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class SynthesisLayer(nn.Module):
    """Modulated, demodulated 3x3 convolution (2x up-sampling first when `up`), noise, bias, leaky ReLU, clamp."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, up: bool, config: StyleGAN2Config) -> None:
        super().__init__()
        self.up = up
        self.use_noise = config.use_noise
        self.conv_clamp = config.conv_clamp
        self.affine = FullyConnected(config.w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if config.use_noise:
            self.register_buffer("noise_const", torch.randn(resolution, resolution))
            self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", normalized_filter(config.resample_filter), persistent=False)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str, gain: float = 1.0) -> torch.Tensor:
        styles = self.affine(w)  # [N, in]
        weight_energy = self.weight.square().sum(dim=(2, 3))  # [out, in]
        demodulation = (styles.square() @ weight_energy.t() + DEMODULATION_EPSILON).rsqrt()  # [N, out]
        activation_gain = LRELU_GAIN * gain
        x = modulated_conv2d(
            x, self.weight, styles, demodulation * activation_gain, self.bias * activation_gain, self.up,
            self.resample_filter,
        )
        noise = self._noise(x, noise_mode)
        if noise is not None:
            x.add_((noise * activation_gain).to(x.dtype))
        F.leaky_relu_(x, LRELU_SLOPE)
        if self.conv_clamp is not None:
            limit = self.conv_clamp * gain
            # autograd keeps the leaky ReLU's output for its backward pass, so then the clamp writes a new tensor
            x = x.clamp(-limit, limit) if x.requires_grad else x.clamp_(-limit, limit)
        return x

    def _noise(self, x: torch.Tensor, noise_mode: str) -> torch.Tensor | None:
        if not self.use_noise or noise_mode == "none":
            return None
        if noise_mode == "const":
            return self.noise_const * self.noise_strength
        return torch.randn(x.shape[0], 1, *x.shape[2:], device=x.device) * self.noise_strength


class ToRGB(nn.Module):
    """Modulated 1x1 convolution to image channels, without demodulation; bias and clamp, no activation."""

    def __init__(self, in_channels: int, config: StyleGAN2Config) -> None:
        super().__init__()
        self.conv_clamp = config.conv_clamp
        self.affine = FullyConnected(config.w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(config.img_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(config.img_channels))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        styles = self.affine(w) * self.weight_gain  # [N, in]
        kernels = (self.weight[None, :, :, 0, 0] * styles[:, None, :]).to(x.dtype)  # [N, rgb, in]
        # A 1x1 convolution is a matrix product over channels; channels-last pixels are a free [N, H*W, in] view.
        pixels = x.permute(0, 2, 3, 1).reshape(batch, height * width, channels)
        rgb = torch.baddbmm(self.bias.to(x.dtype).view(1, 1, -1), pixels, kernels.transpose(1, 2)).float()
        rgb = rgb.view(batch, height, width, -1).permute(0, 3, 1, 2)
        if self.conv_clamp is not None:
            rgb.clamp_(-self.conv_clamp, self.conv_clamp)
        return rgb


class ResidualSkip(nn.Module):
    """'resnet' shortcut: 2x up-sampling and a 1x1 convolution without bias, with the equalized-lr weight gain."""

    def __init__(self, in_channels: int, out_channels: int, config: StyleGAN2Config) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.weight_gain = 1 / math.sqrt(in_channels)
        self.register_buffer("resample_filter", normalized_filter(config.resample_filter), persistent=False)

    def forward(self, x: torch.Tensor, gain: float) -> torch.Tensor:
        # Both steps are linear and per-pixel/per-channel, so convolving first up-samples fewer channels.
        x = F.conv2d(x, (self.weight * (self.weight_gain * gain)).to(x.dtype))
        return upsample2d(x, self.resample_filter)


class SynthesisBlock(nn.Module):
    """One resolution: learned 4x4 constant or 2x up-conv from the previous block, a conv, and maybe a ToRGB."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, config: StyleGAN2Config) -> None:
        super().__init__()
        self.architecture = config.architecture
        self.use_fp16 = config.uses_fp16(resolution)
        self.compute_dtype = torch.float32  # set through StyleGAN2Generator.set_compute_dtype
        is_first, is_last = in_channels == 0, resolution == config.img_resolution
        if is_first:
            self.const = nn.Parameter(torch.randn(out_channels, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, resolution, up=True, config=config)
        self.conv1 = SynthesisLayer(out_channels, out_channels, resolution, up=False, config=config)
        self.torgb = ToRGB(out_channels, config) if is_last or config.architecture == "skip" else None
        has_shortcut = config.architecture == "resnet" and not is_first
        self.skip = ResidualSkip(in_channels, out_channels, config) if has_shortcut else None
        self.num_conv = 1 if is_first else 2
        self.num_torgb = 0 if self.torgb is None else 1
        self.register_buffer("resample_filter", normalized_filter(config.resample_filter), persistent=False)

    def forward(
        self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        dtype = self.compute_dtype
        if x is None:
            x = self.const.to(dtype).expand(ws.shape[0], -1, -1, -1).contiguous(memory_format=torch.channels_last)
            x = self.conv1(x, ws[:, 0], noise_mode)
        elif self.skip is not None:
            x = x.to(dtype, memory_format=torch.channels_last)
            shortcut = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, ws[:, 0], noise_mode)
            x = shortcut.add_(self.conv1(x, ws[:, 1], noise_mode, gain=math.sqrt(0.5)))
        else:
            x = x.to(dtype, memory_format=torch.channels_last)
            x = self.conv1(self.conv0(x, ws[:, 0], noise_mode), ws[:, 1], noise_mode)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.torgb is not None:
            rgb = self.torgb(x, ws[:, self.num_conv])
            img = rgb if img is None else img.add_(rgb)
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, img_channels, R, R]. Blocks are named b4, b8, ... like NVIDIA's."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        for resolution in config.block_resolutions:
            in_channels = config.channels(resolution // 2) if resolution > 4 else 0
            block = SynthesisBlock(in_channels, config.channels(resolution), resolution, config)
            setattr(self, f"b{resolution}", block)

    def forward(self, ws: torch.Tensor, noise_mode: str = "const") -> torch.Tensor:
        if ws.ndim != 3 or ws.shape[1:] != (self.config.num_ws, self.config.w_dim):
            raise ValueError(f"ws must be [N, {self.config.num_ws}, {self.config.w_dim}], not {list(ws.shape)}")
        ws = ws.float()
        x = img = None
        w_index = 0
        for resolution in self.config.block_resolutions:
            block = getattr(self, f"b{resolution}")
            # A block's ToRGB shares its w with the next block's first conv (w_index advances by num_conv only).
            x, img = block(x, img, ws[:, w_index : w_index + block.num_conv + block.num_torgb], noise_mode)
            w_index += block.num_conv
        return img.contiguous()


class StyleGAN2Generator(nn.Module):
    """z [N, z_dim], c [N, c_dim] or None -> image [N, img_channels, R, R], nominally in [-1, 1], not clamped."""

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        self.mapping = MappingNetwork(config)
        self.synthesis = SynthesisNetwork(config)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        noise_mode: str = "const",
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        return self.synthesis(self.mapping(z, c, truncation_psi, truncation_cutoff), noise_mode)

    def has_float16_blocks(self) -> bool:
        return self.config.num_fp16_res > 0

    def set_compute_dtype(self, dtype: torch.dtype) -> None:
        """Synthesis blocks compute in `dtype`: bfloat16 in every block (it has float32's range), float16 only
        in NVIDIA's float16 blocks. The mapping network and the summed ToRGB image stay float32."""
        for resolution in self.config.block_resolutions:
            block = getattr(self.synthesis, f"b{resolution}")
            block.compute_dtype = dtype if dtype != torch.float16 or block.use_fp16 else torch.float32

ARCHITECTURE = Architecture(
    name="stylegan2",
    title="StyleGAN2 (Karras et al. 2020): NVIDIA's pretrained networks, converted",
    config_class=StyleGAN2Config,
    generator_class=StyleGAN2Generator,
)
