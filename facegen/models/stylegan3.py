"""StyleGAN3 (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"), configurations T and R.

The generator treats feature maps as samples of continuous signals. Its synthesis network starts from Fourier
features and runs `num_layers + 1` layers; each layer is a modulated convolution followed by a *filtered
nonlinearity*: up-sample (so the leaky ReLU's new frequencies have room), leaky ReLU, low-pass filter and
down-sample back to the layer's sampling rate. Config T uses 3x3 convolutions and separable filters; config R
uses 1x1 convolutions and radially symmetric 2-D down filters, which makes it equivariant to rotation as well.

Every layer's geometry (sizes, channels, sampling rates, cutoffs, filter taps, up/down factors, padding) lives in
the config, so a network of any resolution and width can be described, saved as JSON and rebuilt. A config built
from hyper-parameters alone derives the geometry with the paper's schedule (`synthesis_geometry`); a converted
network keeps the geometry it was trained with. The filter taps are buffers, so loaded weights bring their own.

Module and tensor names follow NVIDIA's release (`mapping.fc0.weight`, `synthesis.L3_52_512.affine.bias`, ...) so
converted state dicts load without renaming. Layout: channels-last (NHWC) memory throughout the synthesis network,
because the per-channel filters vectorise over channels there; see "Filtered nonlinearity" for the speed notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facegen.models.architecture import Architecture

LRELU_SLOPE = 0.2
LRELU_GAIN = math.sqrt(2)  # keeps unit variance through the leaky ReLU for unit-variance input


# ---------------------------------------------------------------------------------------------------------------
# Configuration and geometry


@dataclass(frozen=True)
class StyleGAN3InputGeometry:
    """The Fourier-feature input: `channels` features sampled on a `size`^2 grid at `sampling_rate`."""

    channels: int
    size: int
    sampling_rate: float
    bandwidth: float  # frequencies above this fade out towards sampling_rate / 2


@dataclass(frozen=True)
class StyleGAN3LayerGeometry:
    """One synthesis layer: its name, widths, sampling grid and the filters of its nonlinearity."""

    name: str  # NVIDIA's name, L{index}_{out_size}_{out_channels}
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: float
    out_sampling_rate: float
    tmp_sampling_rate: float  # where the leaky ReLU runs
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    up_factor: int
    up_taps: int  # 1 means no up filter
    down_factor: int
    down_taps: int  # 1 means no down filter
    down_radial: bool  # 2-D radially symmetric down filter (config R) instead of a separable one
    padding: tuple[int, int, int, int]  # x_low, x_high, y_low, y_high of the up-sampled signal; negative crops
    conv_kernel: int
    is_torgb: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "padding", tuple(int(value) for value in self.padding))


@dataclass(frozen=True)
class StyleGAN3Config:
    """Hyper-parameters of a StyleGAN3 generator and, derived from them or read from a file, its geometry.

    Defaults are config T at 1024x1024. Config R: `conv_kernel=1, use_radial_filters=True` and doubled
    `channel_base` and `channel_max`.
    """

    z_dim: int = 512
    c_dim: int = 0
    w_dim: int = 512
    resolution: int = 1024
    image_channels: int = 3
    mapping_layers: int = 2
    mapping_lr_multiplier: float = 0.01
    channel_base: int = 32768
    channel_max: int = 512
    num_layers: int = 14  # synthesis layers before ToRGB
    num_critical: int = 2  # last layers sampled critically (cutoff = Nyquist) for sharp images
    margin_size: int = 10  # extra pixels each side that keep borders from leaking into the image
    first_cutoff: float = 2.0
    first_stopband: float = 2**2.1
    last_stopband_rel: float = 2**0.3  # last stopband relative to the last cutoff
    filter_size: int = 6  # filter taps per unit of up/down factor
    lrelu_upsampling: int = 2  # how far above the layer's rate the leaky ReLU runs
    conv_kernel: int = 3
    use_radial_filters: bool = False
    conv_clamp: float | None = 256.0
    # Layers sampled above resolution / 2**num_fp16_res are the ones NVIDIA runs in float16 on CUDA (4 in every
    # network NVIDIA released).
    num_fp16_res: int = 4
    output_scale: float = 0.25
    # Derived from the hyper-parameters when left empty; a converted network brings its own.
    input_geometry: StyleGAN3InputGeometry | None = None
    layers: tuple[StyleGAN3LayerGeometry, ...] = field(default=())

    def __post_init__(self) -> None:
        # JSON round trips hand us dicts and lists; rebuild the nested dataclasses.
        input_geometry, layers = self.input_geometry, self.layers
        if isinstance(input_geometry, dict):
            input_geometry = StyleGAN3InputGeometry(**input_geometry)
        layers = tuple(StyleGAN3LayerGeometry(**layer) if isinstance(layer, dict) else layer for layer in layers)
        if input_geometry is None or not layers:
            input_geometry, layers = synthesis_geometry(self)
        object.__setattr__(self, "input_geometry", input_geometry)
        object.__setattr__(self, "layers", layers)

    @property
    def num_ws(self) -> int:
        return len(self.layers) + 1  # one for the input's transform, one per layer


def synthesis_geometry(config: StyleGAN3Config) -> tuple[StyleGAN3InputGeometry, tuple[StyleGAN3LayerGeometry, ...]]:
    """The paper's schedule (Section 3.2, Figure 4b): cutoffs grow geometrically from `first_cutoff` to Nyquist
    at the output resolution, the last `num_critical` layers critically sampled; stopbands grow likewise; each
    layer samples at the smallest power of two that holds its stopband."""
    count = config.num_layers
    exponents = np.minimum(np.arange(count + 1) / (count - config.num_critical), 1)
    last_cutoff = config.resolution / 2
    last_stopband = last_cutoff * config.last_stopband_rel
    cutoffs = config.first_cutoff * (last_cutoff / config.first_cutoff) ** exponents
    stopbands = config.first_stopband * (last_stopband / config.first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, config.resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + config.margin_size * 2
    sizes[-2:] = config.resolution  # the last layers crop the margin away
    channels = np.rint(np.minimum((config.channel_base / 2) / cutoffs, config.channel_max))
    channels[-1] = config.image_channels

    input_geometry = StyleGAN3InputGeometry(
        channels=int(channels[0]),
        size=int(sizes[0]),
        sampling_rate=float(sampling_rates[0]),
        bandwidth=float(cutoffs[0]),
    )
    layers = []
    for index in range(count + 1):
        previous = max(index - 1, 0)
        is_torgb = index == count
        is_critically_sampled = index >= count - config.num_critical
        kernel = 1 if is_torgb else config.conv_kernel
        tmp_sampling_rate = max(sampling_rates[previous], sampling_rates[index]) * (
            1 if is_torgb else config.lrelu_upsampling
        )
        up_factor = int(np.rint(tmp_sampling_rate / sampling_rates[previous]))
        down_factor = int(np.rint(tmp_sampling_rate / sampling_rates[index]))
        up_taps = config.filter_size * up_factor if up_factor > 1 and not is_torgb else 1
        down_taps = config.filter_size * down_factor if down_factor > 1 and not is_torgb else 1
        in_size, out_size = int(sizes[previous]), int(sizes[index])
        # Pad so the output samples sit symmetrically in the up-sampled signal (paper, Appendix C.3).
        pad_total = (out_size - 1) * down_factor + 1 - (in_size + kernel - 1) * up_factor + up_taps + down_taps - 2
        pad_low = (pad_total + up_factor) // 2
        pad_high = pad_total - pad_low
        layers.append(
            StyleGAN3LayerGeometry(
                name=f"L{index}_{out_size}_{int(channels[index])}",
                in_channels=int(channels[previous]),
                out_channels=int(channels[index]),
                in_size=in_size,
                out_size=out_size,
                in_sampling_rate=float(sampling_rates[previous]),
                out_sampling_rate=float(sampling_rates[index]),
                tmp_sampling_rate=float(tmp_sampling_rate),
                in_cutoff=float(cutoffs[previous]),
                out_cutoff=float(cutoffs[index]),
                in_half_width=float(half_widths[previous]),
                out_half_width=float(half_widths[index]),
                up_factor=up_factor,
                up_taps=up_taps,
                down_factor=down_factor,
                down_taps=down_taps,
                down_radial=config.use_radial_filters and not is_critically_sampled,
                padding=(pad_low, pad_high, pad_low, pad_high),
                conv_kernel=kernel,
                is_torgb=is_torgb,
            )
        )
    return input_geometry, tuple(layers)


def design_lowpass_filter(
    taps: int, cutoff: float, half_width: float, sampling_rate: float, radial: bool = False
) -> torch.Tensor | None:
    """Kaiser-windowed low-pass filter, normalised to unit DC gain: a 1-D sinc (applied along both axes) or,
    when `radial`, a 2-D jinc, whose response is rotation invariant (paper, Appendix C.2 and F)."""
    if taps == 1:
        return None
    from scipy import signal, special  # only needed to build a network from a config; loaded filters are buffers

    width = 2 * half_width
    if not radial:
        return torch.as_tensor(signal.firwin(taps, cutoff, width=width, fs=sampling_rate), dtype=torch.float32)
    positions = (np.arange(taps) - (taps - 1) / 2) / sampling_rate
    radius = np.hypot(*np.meshgrid(positions, positions))
    with np.errstate(invalid="ignore", divide="ignore"):
        jinc = special.j1(2 * np.pi * cutoff * radius) / (np.pi * radius)
    jinc[radius == 0] = cutoff  # the limit at the centre (odd tap counts)
    window = np.kaiser(taps, signal.kaiser_beta(signal.kaiser_atten(taps, width / (sampling_rate / 2))))
    kernel = jinc * np.outer(window, window)
    return torch.as_tensor(kernel / kernel.sum(), dtype=torch.float32)


# ---------------------------------------------------------------------------------------------------------------
# Mapping network


class FullyConnected(nn.Module):
    """Dense layer with equalised learning rate: weights stored at unit scale, scaled at run time."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        lrelu: bool = False,
        lr_multiplier: float = 1.0,
        weight_init: float = 1.0,
        bias_init: float | list[float] = 0.0,
    ) -> None:
        super().__init__()
        self.lrelu = lrelu
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (weight_init / lr_multiplier))
        self.bias = nn.Parameter(torch.as_tensor(np.broadcast_to(bias_init, [out_features]) / lr_multiplier).float())
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.addmm(self.bias * self.bias_gain, x, (self.weight * self.weight_gain).t())
        return F.leaky_relu(x, LRELU_SLOPE) * LRELU_GAIN if self.lrelu else x


def normalize_second_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class MappingNetwork(nn.Module):
    """z (and a class label) -> w, broadcast to every layer; truncation pulls w towards the running mean."""

    def __init__(self, config: StyleGAN3Config) -> None:
        super().__init__()
        self.num_ws = config.num_ws
        self.embed = FullyConnected(config.c_dim, config.w_dim) if config.c_dim > 0 else None
        widths = [config.z_dim + (config.w_dim if config.c_dim > 0 else 0)] + [config.w_dim] * config.mapping_layers
        for index, (in_features, out_features) in enumerate(zip(widths, widths[1:])):
            layer = FullyConnected(in_features, out_features, lrelu=True, lr_multiplier=config.mapping_lr_multiplier)
            setattr(self, f"fc{index}", layer)
        self.num_layers = config.mapping_layers
        self.register_buffer("w_avg", torch.zeros(config.w_dim))

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
    ) -> torch.Tensor:
        x = normalize_second_moment(z.float())
        if self.embed is not None:
            if c is None:
                raise ValueError("this mapping network is conditional: pass c [N, c_dim]")
            x = torch.cat([x, normalize_second_moment(self.embed(c.float()))], dim=1)
        for index in range(self.num_layers):
            x = getattr(self, f"fc{index}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


# ---------------------------------------------------------------------------------------------------------------
# Synthesis network


class SynthesisInput(nn.Module):
    """Fourier features sin(2 pi (x . f + phi)) on a sampling grid, rotated and translated by an affine of w.

    `transform` is a user-set 3x3 transform of the output (identity unless set; e.g. to pan or rotate faces).
    A call may pass its own instead, so one network shared by many callers never has its buffer rewritten.
    """

    def __init__(self, w_dim: int, geometry: StyleGAN3InputGeometry) -> None:
        super().__init__()
        self.geometry = geometry
        channels = geometry.channels
        self.weight = nn.Parameter(torch.randn(channels, channels))
        # Starts at the identity rotation (cos 1, sin 0) and no translation.
        self.affine = FullyConnected(w_dim, 4, weight_init=0.0, bias_init=[1.0, 0.0, 0.0, 0.0])
        self.register_buffer("transform", torch.eye(3))
        # Random frequencies inside the band: uniform direction, radius sqrt-uniform (uniform over the disc).
        angles = torch.rand(channels) * 2 * math.pi
        radii = geometry.bandwidth * torch.rand(channels).sqrt()
        self.register_buffer("freqs", torch.stack([angles.cos(), angles.sin()], dim=1) * radii[:, None])
        self.register_buffer("phases", torch.rand(channels) - 0.5)
        # Pixel centres in the continuous coordinate system, one unit = sampling_rate pixels.
        positions = (torch.arange(geometry.size) + 0.5 - geometry.size / 2) / geometry.sampling_rate
        grid_y, grid_x = torch.meshgrid(positions, positions, indexing="ij")
        self.register_buffer("grid", torch.stack([grid_x, grid_y], dim=-1), persistent=False)  # [H, W, 2]

    def forward(self, w: torch.Tensor, transform: torch.Tensor | None = None) -> torch.Tensor:
        t = self.affine(w)  # [N, 4]: (cos, sin) of the rotation, then the translation
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        batch = len(w)
        rotation = torch.eye(3, device=w.device).repeat(batch, 1, 1)
        rotation[:, 0, 0], rotation[:, 0, 1] = t[:, 0], -t[:, 1]
        rotation[:, 1, 0], rotation[:, 1, 1] = t[:, 1], t[:, 0]
        translation = torch.eye(3, device=w.device).repeat(batch, 1, 1)
        translation[:, 0, 2], translation[:, 1, 2] = -t[:, 2], -t[:, 3]
        user_transform = self.transform if transform is None else transform.to(self.transform)
        transforms = rotation @ translation @ user_transform  # [N, 3, 3]

        # Transforming the frequencies and phases transforms the continuous signal they describe.
        phases = self.phases + (self.freqs @ transforms[:, :2, 2:]).squeeze(2)  # [N, C]
        freqs = self.freqs @ transforms[:, :2, :2]  # [N, C, 2]
        # Fade out frequencies that the rotation pushed near Nyquist (paper, Section 3.2).
        bandwidth, nyquist = self.geometry.bandwidth, self.geometry.sampling_rate / 2
        amplitudes = (1 - (freqs.norm(dim=2) - bandwidth) / (nyquist - bandwidth)).clamp(0, 1)

        x = torch.einsum("hwk,nck->nhwc", self.grid, freqs) + phases[:, None, None, :]
        x = torch.sin(x * (2 * math.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / math.sqrt(self.geometry.channels)).t()  # [N, H, W, C]
        return x.permute(0, 3, 1, 2)  # NCHW view of channels-last memory


class SynthesisLayer(nn.Module):
    """Modulated convolution, then the filtered leaky ReLU. The ToRGB layer is the linear 1x1 special case."""

    def __init__(self, w_dim: int, geometry: StyleGAN3LayerGeometry, conv_clamp: float | None) -> None:
        super().__init__()
        self.geometry = geometry
        self.conv_clamp = conv_clamp
        kernel = geometry.conv_kernel
        self.affine = FullyConnected(w_dim, geometry.in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(geometry.out_channels, geometry.in_channels, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(geometry.out_channels))
        # Running mean of the input's squared magnitude (updated in training); its rsqrt normalises the input.
        self.register_buffer("magnitude_ema", torch.ones([]))
        self.compute_dtype = torch.float32  # set through StyleGAN3Generator.set_compute_dtype
        up_filter = design_lowpass_filter(
            geometry.up_taps, geometry.in_cutoff, geometry.in_half_width, geometry.tmp_sampling_rate
        )
        self.register_buffer("up_filter", up_filter)
        self.register_buffer(
            "down_filter",
            design_lowpass_filter(
                geometry.down_taps,
                geometry.out_cutoff,
                geometry.out_half_width,
                geometry.tmp_sampling_rate,
                radial=geometry.down_radial,
            ),
        )

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        geometry = self.geometry
        styles = self.affine(w)
        x = x.to(self.compute_dtype)
        if geometry.is_torgb:
            styles = styles * (1 / math.sqrt(geometry.in_channels * geometry.conv_kernel**2))
        x = modulated_conv2d(
            x,
            self.weight,
            styles,
            bias=self.bias,
            demodulate=not geometry.is_torgb,
            input_gain=self.magnitude_ema.rsqrt(),
        )
        if x.device.type == "cpu":
            # The CPU has fast bfloat16 convolutions but only slow generic bfloat16 kernels for the depthwise
            # (transposed) filters below, so the filters run in float32 there (their many-tap sums then stay float32 too).
            x = x.float()
        return filtered_lrelu(
            x,
            self.up_filter,
            self.down_filter,
            up=geometry.up_factor,
            down=geometry.down_factor,
            padding=geometry.padding,
            gain=1.0 if geometry.is_torgb else LRELU_GAIN,
            slope=1.0 if geometry.is_torgb else LRELU_SLOPE,
            clamp=self.conv_clamp,
        )


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] -> image [N, C, resolution, resolution]: input from ws[0], layer i from ws[i + 1]."""

    def __init__(self, config: StyleGAN3Config) -> None:
        super().__init__()
        self.output_scale = config.output_scale
        self.input = SynthesisInput(config.w_dim, config.input_geometry)
        self.layer_names = [geometry.name for geometry in config.layers]
        for geometry in config.layers:
            setattr(self, geometry.name, SynthesisLayer(config.w_dim, geometry, config.conv_clamp))

    def forward(
        self, ws: torch.Tensor, noise_mode: str = "const", input_transform: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`input_transform`: a 3x3 transform used instead of the stored `input.transform` for this call."""
        del noise_mode  # accepted for the W-space contract; StyleGAN3 has no noise inputs
        if ws.device.type == "cpu" and len(ws) > 1:
            # One image at a time on the CPU: a single image's signals stay closer to the caches, which is faster
            # than batching there (bench/README.md).
            return torch.cat([self(ws[index : index + 1], input_transform=input_transform) for index in range(len(ws))])
        ws = ws.float().unbind(dim=1)
        x = self.input(ws[0], input_transform)
        for name, w in zip(self.layer_names, ws[1:]):
            x = getattr(self, name)(x, w)
        return (x.float() * self.output_scale).contiguous()


class StyleGAN3Generator(nn.Module):
    """z [N, z_dim] (and c [N, c_dim] when conditional) -> image [N, C, H, W], nominally in [-1, 1], not clamped.

    `mapping(z, c, truncation_psi, truncation_cutoff)` and `synthesis(ws, noise_mode)` are the submodules.
    """

    def __init__(self, config: StyleGAN3Config) -> None:
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
    ) -> torch.Tensor:
        return self.synthesis(self.mapping(z, c, truncation_psi), noise_mode)

    def uses_float16(self, layer: StyleGAN3LayerGeometry) -> bool:
        return layer.out_sampling_rate * 2**self.config.num_fp16_res > self.config.resolution

    def has_float16_blocks(self) -> bool:
        return any(self.uses_float16(layer) for layer in self.config.layers)

    def set_compute_dtype(self, dtype: torch.dtype) -> None:
        """Synthesis layers compute in `dtype`: bfloat16 in every layer, float16 in NVIDIA's float16 layers. The
        mapping network, Fourier input and output scaling stay float32."""
        for layer in self.config.layers:
            uses_dtype = dtype != torch.float16 or self.uses_float16(layer)
            getattr(self.synthesis, layer.name).compute_dtype = dtype if uses_dtype else torch.float32


# ---------------------------------------------------------------------------------------------------------------
# Modulated convolution and filtered nonlinearity


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    bias: torch.Tensor,
    demodulate: bool,
    input_gain: torch.Tensor,
) -> torch.Tensor:
    """Convolution whose weights are scaled per sample by `styles` (per input channel), optionally demodulated
    back to unit output variance, with 'full' padding (kernel - 1). Returns conv + bias.

    Demodulating layers first normalise the weight (RMS per output channel) and the styles (RMS over the whole
    style tensor); demodulation cancels both except through its 1e-8 epsilon, which is why they are kept. The
    input gain multiplies after demodulation, so it is not cancelled.
    """
    if demodulate:
        weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
        # Squared norm of each sample's modulated weight per output channel: sum_i s_i^2 sum_k W_oik^2.
        demodulation = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, out]
    # Scaling the input instead of the weight gives the same result with one shared weight for the batch.
    # In float16 the input is also scaled by 1/sqrt(fan_in), which keeps the convolution's sums in range; the
    # output scale undoes it.
    fan_in_gain = weight[0].numel() ** -0.5 if x.dtype == torch.float16 else 1.0
    x = x * (styles * (input_gain * fan_in_gain)).to(x.dtype)[:, :, None, None]
    x = F.conv2d(x, weight.to(x.dtype), padding=weight.shape[-1] - 1)
    bias = bias.to(x.dtype)[None, :, None, None]
    if demodulate:
        return torch.addcmul(bias, x, (demodulation / fan_in_gain).to(x.dtype)[:, :, None, None])
    return x / fan_in_gain + bias if fan_in_gain != 1 else x + bias


# Speed notes (CPU; bench/stylegan3.py times this network against the reference path, figures in bench/README.md).
# - The 3x3 modulated convolutions are nearly all of the arithmetic and already run at the machine's matmul peak
#   through oneDNN, so the work is in everything around them.
# - The modulated convolution scales activations instead of weights, so a batch shares one weight tensor (one
#   dense convolution instead of a grouped one with per-sample weights).
# - Channels-last memory everywhere: the per-channel FIR filters then vectorise over channels (oneDNN's
#   depthwise kernels), much faster than NCHW.
# - Up-sampling is a strided transposed depthwise convolution per axis (polyphase: no zero-inserted tensor, no
#   multiplications by inserted zeros); down-sampling a strided depthwise convolution per axis (a 2-D one for
#   radial filters). Neither builds the zero-inserted or padded signal the definition describes.
# - The leaky ReLU and clamp run in place; the lrelu gain rides on the down filter, the up gain on the up filter.
# - The up-sampled signal is 4-16x the layer's input (at 1024x1024, batch 8, one layer's would be ~11 GB), so
#   the batch is processed in bands (whole images when they fit, else rows of one image) whose up-sampled
#   signal stays under STRIP_BYTES; row bands recompute the rows their FIR halos share. Bands of a few MB stay in
#   the caches between the up-sampling, the nonlinearity and the down-sampling; bench/README.md has the sizes tried.
STRIP_BYTES = 16 * 2**20
MIN_STRIP_ROWS = 8  # fewer output rows per band would recompute more halo than they save


def filtered_lrelu(
    x: torch.Tensor,
    up_filter: torch.Tensor | None,
    down_filter: torch.Tensor | None,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    """Up-sample by `up` with `up_filter` (zero insertion, pad/crop by `padding`, FIR, gain up^2), leaky ReLU
    times `gain` clamped to +-`clamp`, then FIR with `down_filter` and keep every `down`-th sample.

    The caller has added the bias already. 1-D filters apply along both axes; a 2-D `down_filter` is radial.
    `x` is [N, C, H, W]; channels-last memory is fastest.
    """
    batch, channels, height, width = x.shape
    x_low, x_high, y_low, y_high = padding
    up_taps = 1 if up_filter is None else up_filter.shape[0]
    down_taps = 1 if down_filter is None else down_filter.shape[0]
    # Row s of the fully filtered up-sampled signal is sum_i x[i] f[s - up*i]; the padded signal starts at row
    # up_taps - 1 - y_low of it, and output row o reads padded rows [o*down, o*down + down_taps).
    first_full_row = up_taps - 1 - y_low
    tmp_height = height * up + y_low + y_high - (up_taps - 1)
    tmp_width = width * up + x_low + x_high - (up_taps - 1)
    out_height = (tmp_height - down_taps) // down + 1
    out_width = (tmp_width - down_taps) // down + 1
    row_bytes = channels * tmp_width * x.element_size()
    images_per_band = max(1, STRIP_BYTES // (row_bytes * tmp_height))
    strip_rows = max(MIN_STRIP_ROWS, (STRIP_BYTES // row_bytes - down_taps) // down + 1)
    out = torch.empty(
        batch, channels, out_height, out_width, dtype=x.dtype, device=x.device, memory_format=torch.channels_last
    )
    for index in range(0, batch, images_per_band):
        images = slice(index, index + images_per_band)
        for top in range(0, out_height, strip_rows):
            bottom = min(top + strip_rows, out_height)
            full_start = top * down + first_full_row
            full_stop = (bottom - 1) * down + down_taps + first_full_row
            # Input rows that reach full rows [full_start, full_stop): i with 0 <= s - up*i < up_taps.
            first = min(max(0, -((up_taps - 1 - full_start) // up)), height - 1)
            last = max(min(height, (full_stop - 1) // up + 1), first + 1)
            strip = x[images, :, first:last]
            strip = _upsample_axis(strip, up_filter, up, up_taps - 1 - x_low, width * up + x_high, dim=3)
            strip = _upsample_axis(strip, up_filter, up, full_start - up * first, full_stop - up * first, dim=2)
            # gain * clamp(lrelu(v), c / gain) == clamp(gain * lrelu(v), c); the gain then rides on the down filter.
            if slope != 1:
                strip = F.leaky_relu_(strip, slope)
            if clamp is not None:
                strip = strip.clamp_(-clamp / gain, clamp / gain)
            out[images, :, top:bottom] = downsample2d(strip, down_filter, down, gain)
    return out


def _upsample_axis(
    x: torch.Tensor, taps: torch.Tensor | None, factor: int, start: int, stop: int, dim: int
) -> torch.Tensor:
    """Samples [start, stop) along `dim` (3: width, 2: height) of x zero-inserted by `factor` and convolved with
    `taps` (gain `factor`), zero outside the signal: a strided transposed convolution (polyphase), then the
    crop or zero padding it could not do itself. The full signal has (L - 1) * factor + len(taps) samples."""
    length = x.shape[dim]
    if taps is None and factor == 1:
        return _pad_axis(x, -start, stop - length, dim) if start or stop != length else x
    if taps is None:
        taps = torch.ones(1, dtype=x.dtype, device=x.device)
    channels, count = x.shape[1], taps.shape[0]
    full = (length - 1) * factor + count
    crop = max(0, min(start, full - stop))  # the symmetric part, cropped by the convolution itself
    if dim == 3:
        shape, stride, conv_padding = (1, count), (1, factor), (0, crop)
    else:
        shape, stride, conv_padding = (count, 1), (factor, 1), (crop, 0)
    kernel = (taps * factor).to(x.dtype).reshape(1, 1, *shape).expand(channels, 1, *shape)
    x = F.conv_transpose2d(x, kernel, stride=stride, padding=conv_padding, groups=channels)
    extra_low, extra_high = crop - start, stop - (full - crop)
    return _pad_axis(x, extra_low, extra_high, dim) if extra_low or extra_high else x


def _pad_axis(x: torch.Tensor, low: int, high: int, dim: int) -> torch.Tensor:
    """Zero-pad (positive) or crop (negative) one spatial axis, keeping channels-last memory."""
    padded = F.pad(x, [low, high] if dim == 3 else [0, 0, low, high])
    return padded.contiguous(memory_format=torch.channels_last)


def downsample2d(x: torch.Tensor, taps: torch.Tensor | None, factor: int, gain: float) -> torch.Tensor:
    """FIR (valid part only) then keep every `factor`-th sample, as one strided convolution per axis."""
    if taps is None:
        x = x * gain if gain != 1 else x
        return x[:, :, ::factor, ::factor] if factor > 1 else x
    channels = x.shape[1]
    if taps.ndim == 2:
        kernel = (taps * gain).flip([0, 1]).to(x.dtype)[None, None].expand(channels, 1, *taps.shape)
        return F.conv2d(x, kernel, stride=factor, groups=channels)
    count = taps.numel()
    row = (taps * gain).flip(0).to(x.dtype).reshape(1, 1, 1, count).expand(channels, 1, 1, count)
    x = F.conv2d(x, row, stride=(1, factor), groups=channels)
    column = taps.flip(0).to(x.dtype).reshape(1, 1, count, 1).expand(channels, 1, count, 1)
    return F.conv2d(x, column, stride=(factor, 1), groups=channels)


ARCHITECTURE = Architecture(
    name="stylegan3",
    title="StyleGAN3 (Karras et al. 2021): NVIDIA's pretrained networks, converted",
    config_class=StyleGAN3Config,
    generator_class=StyleGAN3Generator,
)
