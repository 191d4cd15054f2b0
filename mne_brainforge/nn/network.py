"""The BrainForge network: scalp maps -> CNN -> Transformer -> brain regions.

Shapes: ``B`` batch, ``C`` channels, ``T`` time samples, ``H x W`` map
pixels, ``D`` model width, ``R`` regions.
"""

import math

import torch
from torch import nn


class SpatialCNN(nn.Module):
    """Conv2d-BatchNorm-ELU blocks on each scalp map, no pooling.

    Localization is a "where" task: pooling would throw away the position of
    the pattern, so every block keeps the grid size and the final features are
    flattened with their layout.

    ``(N, 1, H, W) -> (N, D)``
    """

    def __init__(self, size, channels=(8, 16), bottleneck=4, d_model=128):
        super().__init__()
        blocks, c_in = [], 1
        for c_out in channels:
            blocks += [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ELU(),
            ]
            c_in = c_out
        # 1x1 conv to a few feature maps keeps the flattened vector small
        blocks += [nn.Conv2d(c_in, bottleneck, 1), nn.ELU(), nn.Flatten()]
        self.blocks = nn.Sequential(*blocks)
        self.project = nn.Linear(bottleneck * size * size, d_model)

    def forward(self, maps):
        return self.project(self.blocks(maps))


class ChannelMLP(nn.Module):
    """Ablation of :class:`SpatialCNN`: an MLP on the flattened map pixels.

    ``(N, 1, H, W) -> (N, D)``
    """

    def __init__(self, size, d_model=128, hidden=256):
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(size * size, hidden),
            nn.ELU(),
            nn.Linear(hidden, d_model),
        )

    def forward(self, maps):
        return self.net(maps)


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sin/cos encoding of the time step (Vaswani et al., 2017).

    ``(B, T, D) -> (B, T, D)``
    """

    def __init__(self, d_model, max_len=4096):
        super().__init__()
        position = torch.arange(max_len).unsqueeze(1)
        div = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_len, d_model)
        table[:, 0::2] = torch.sin(position * div)
        table[:, 1::2] = torch.cos(position * div)
        self.register_buffer("table", table, persistent=False)

    def forward(self, x):
        return x + self.table[: x.shape[1]]


class TemporalTransformer(nn.Module):
    """Transformer encoder over the time steps of a window.

    ``(B, T, D) -> (B, T, D)``; ``causal=True`` masks the future (streaming).
    """

    def __init__(
        self,
        d_model=128,
        n_heads=4,
        n_layers=2,
        dim_feedforward=256,
        dropout=0.1,
        causal=False,
    ):
        super().__init__()
        self.encoding = SinusoidalPositionalEncoding(d_model)
        layer = nn.TransformerEncoderLayer(
            d_model,
            n_heads,
            dim_feedforward,
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, n_layers, enable_nested_tensor=False
        )
        self.norm = nn.LayerNorm(d_model)
        self.causal = causal

    def forward(self, x):
        mask = None
        if self.causal:
            mask = nn.Transformer.generate_square_subsequent_mask(
                x.shape[1], device=x.device
            )
        return self.norm(
            self.encoder(self.encoding(x), mask=mask, is_causal=self.causal)
        )


class BrainForgeNet(nn.Module):
    """Topomap sequence -> region time courses.

    ``forward(eeg, topo)``: ``eeg`` (B, C, T) and ``topo`` (B, H*W, C) or
    (H*W, C), the interpolation matrix of each sample's montage
    (:func:`~mne_brainforge.nn.topomap_matrix`) -> (B, R, T).

    Parameters
    ----------
    n_regions : int
        Number of output regions.
    size : int
        Scalp-map grid size.
    d_model : int
        Width of the per-time-step features.
    spatial : 'cnn' | 'mlp'
        Spatial module (``'mlp'``: ablation without the CNN).
    temporal : 'transformer' | 'none'
        Temporal module (``'none'``: ablation, each time step alone).
    cnn_channels : tuple of int
        Output channels of the convolution blocks of the spatial CNN.
    n_heads : int
        Attention heads of the temporal Transformer.
    n_layers : int
        Layers of the temporal Transformer.
    dim_feedforward : int
        Width of the Transformer's feed-forward layers.
    dropout : float
        Dropout rate of the Transformer.
    causal : bool
        Mask the future time steps (for streaming).

    See Also
    --------
    mne_brainforge.nn.BrainForgeModel : The network with its parcellation and settings.

    Notes
    -----
    The network alone works on unit-scale, average-referenced windows at one
    sampling rate; :class:`~mne_brainforge.nn.BrainForgeModel` (e.g. from
    :func:`mne_brainforge.training.train_model`) wraps it with everything needed
    to apply it. See the tutorial
    :ref:`sphx_glr_auto_tutorials_02_train_your_own.py`.

    Examples
    --------
    >>> import torch
    >>> from mne_brainforge.nn import BrainForgeNet
    >>> net = BrainForgeNet(n_regions=500, size=16)
    >>> eeg = torch.randn(4, 64, 100)  # (B, C, T)
    >>> topo = torch.randn(16 * 16, 64)  # (H*W, C), e.g. from topomap_matrix
    >>> net(eeg, topo).shape  # (B, R, T)
    torch.Size([4, 500, 100])
    """

    def __init__(
        self,
        n_regions,
        size=16,
        d_model=128,
        *,
        spatial="cnn",
        temporal="transformer",
        cnn_channels=(8, 16),
        n_heads=4,
        n_layers=2,
        dim_feedforward=256,
        dropout=0.1,
        causal=False,
    ):
        super().__init__()
        self.size = size
        if spatial == "cnn":
            self.spatial = SpatialCNN(size, cnn_channels, d_model=d_model)
        elif spatial == "mlp":
            self.spatial = ChannelMLP(size, d_model)
        else:
            raise ValueError(f"spatial must be 'cnn' or 'mlp', got {spatial!r}.")
        if temporal == "transformer":
            self.temporal = TemporalTransformer(
                d_model, n_heads, n_layers, dim_feedforward, dropout, causal
            )
        elif temporal == "none":
            self.temporal = nn.Sequential(
                nn.LayerNorm(d_model), nn.Linear(d_model, d_model), nn.ELU()
            )
        else:
            raise ValueError(
                f"temporal must be 'transformer' or 'none', got {temporal!r}."
            )
        self.head = nn.Linear(d_model, n_regions)

    def forward(self, eeg, topo):
        """Map windows of EEG to region time courses.

        Parameters
        ----------
        eeg : torch.Tensor, shape (B, C, T)
            Windows of EEG (unit scale).
        topo : torch.Tensor, shape (B, H*W, C) | (H*W, C)
            Interpolation matrix of each window's montage, or one for all
            (:func:`~mne_brainforge.nn.topomap_matrix`).

        Returns
        -------
        regions : torch.Tensor, shape (B, R, T)
            Region time courses.

        Examples
        --------
        >>> regions = net(eeg, topo)  # calls forward
        """
        batch, _, n_times = eeg.shape
        maps = torch.matmul(topo, eeg)  # (B, H*W, T)
        maps = maps.transpose(1, 2).reshape(batch * n_times, 1, self.size, self.size)
        features = self.spatial(maps).reshape(batch, n_times, -1)  # (B, T, D)
        return self.head(self.temporal(features)).transpose(1, 2)  # (B, R, T)
