"""``BrainForgeModel``: the network plus everything needed to apply it."""

import copy
import json
from pathlib import Path

import mne
import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .._version import __version__
from ..head.parcellation import Parcellation
from ..utils import atomic_path
from .network import BrainForgeNet, SpatialCNN
from .topomap import topomap_matrix

#: Windows per network call on the CPU (see ``BrainForgeModel.predict_regions``).
CPU_CHUNK = 4
_FORMAT = "mne-brainforge-model"
_FORMAT_VERSION = 1


class BrainForgeModel:
    """A trained BrainForge network and the facts needed to apply it.

    Parameters
    ----------
    net : BrainForgeNet
        The torch module.
    parcellation : Parcellation
        Regions of the source space the network outputs (region values are
        spread over their sources piecewise constant).
    config : dict
        JSON-able settings: ``sfreq`` (Hz) and ``n_times`` (window) the network
        runs at, ``topomap`` (``size``, ``method``), ``net`` (constructor
        arguments of :class:`BrainForgeNet`), ``training`` (how it was
        trained), ``subject``.

    See Also
    --------
    mne_brainforge.load_pretrained, mne_brainforge.training.train_model
    mne_brainforge.apply_brainforge_inverse

    Notes
    -----
    Input windows are divided by their maximum absolute value (the network
    sees unit-scale maps) and the outputs are relative amplitudes; absolute
    amplitudes are recovered by the inverse functions from the data fit.

    See the tutorials :ref:`sphx_glr_auto_tutorials_00_quickstart.py` (the
    pretrained model) and :ref:`sphx_glr_auto_tutorials_02_train_your_own.py`
    (training, saving and applying a model).

    Examples
    --------
    A model comes from :func:`~mne_brainforge.load_pretrained`,
    :func:`~mne_brainforge.training.train_model` or a file:

    >>> import mne_brainforge as bf
    >>> from mne_brainforge.nn import BrainForgeModel
    >>> model = bf.load_pretrained()
    >>> model.sfreq, model.n_times, model.parcellation.n_regions
    (100.0, 100, 500)
    >>> model.save("my-model.pt")
    >>> model = BrainForgeModel.load("my-model.pt")
    >>> stc = bf.apply_brainforge_inverse(evoked, fwd, model=model)
    """

    def __init__(self, net, parcellation, config):
        self.net, self.parcellation, self.config = net, parcellation, dict(config)
        self._topo_cache = {}
        self._fused = None  # (weights key, inference network), see _inference_net

    def __repr__(self):
        c = self.config
        return (
            f"<BrainForgeModel | {self.parcellation.n_regions} regions, "
            f"{self.parcellation.n_sources} sources ({c.get('subject')}), "
            f"{c['n_times']} samples at {c['sfreq']:g} Hz, "
            f"{sum(p.numel() for p in self.net.parameters()):,} parameters>"
        )

    @property
    def sfreq(self):
        """Sampling rate (Hz) the network runs at.

        Examples
        --------
        >>> import mne_brainforge as bf
        >>> bf.load_pretrained().sfreq
        100.0
        """
        return float(self.config["sfreq"])

    @property
    def n_times(self):
        """Window length (samples at :attr:`sfreq`).

        Examples
        --------
        >>> import mne_brainforge as bf
        >>> model = bf.load_pretrained()
        >>> model.n_times / model.sfreq  # window length (s)
        1.0
        """
        return int(self.config["n_times"])

    @property
    def vertices(self):
        """Source-space vertices (list per hemisphere) of the outputs.

        Examples
        --------
        >>> import mne_brainforge as bf
        >>> [len(v) for v in bf.load_pretrained().vertices]
        [10242, 10242]
        """
        return [np.asarray(v) for v in self.parcellation.vertices]

    def topomap(self, ch_pos):
        """Interpolation matrix from channels to the network's scalp-map grid.

        The matrix of the last positions asked for is cached.

        Parameters
        ----------
        ch_pos : array-like, shape (n_channels, 3)
            Channel positions (m, head coordinates).

        Returns
        -------
        matrix : torch.Tensor, shape (H * W, n_channels)
            :func:`~mne_brainforge.nn.topomap_matrix` with the grid size and
            method of ``config['topomap']`` (float32).

        Examples
        --------
        >>> import numpy as np
        >>> import mne_brainforge as bf
        >>> model = bf.load_pretrained()
        >>> ch_pos = np.array([ch["loc"][:3] for ch in evoked.info["chs"]])
        >>> model.topomap(ch_pos).shape  # a 16 x 16 grid
        torch.Size([256, 64])
        """
        key = np.asarray(ch_pos, float).round(6).tobytes()
        if key not in self._topo_cache:
            topo = self.config["topomap"]
            matrix = topomap_matrix(ch_pos, topo["size"], topo["method"])[0]
            self._topo_cache = {key: torch.as_tensor(matrix, dtype=torch.float32)}
        return self._topo_cache[key]

    @torch.inference_mode()
    def predict_regions(self, eeg, ch_pos):
        """Region time courses for windows of average-referenced EEG.

        Parameters
        ----------
        eeg : ndarray, shape (n_windows, n_channels, n_times)
            Windows at :attr:`sfreq`, :attr:`n_times` long.
        ch_pos : ndarray, shape (n_channels, 3)
            Channel positions (m, head coordinates).

        Returns
        -------
        regions : ndarray, shape (n_windows, n_regions, n_times)
            Relative region amplitudes (each window scaled as in training).

        See Also
        --------
        to_sources, mne_brainforge.apply_brainforge_inverse

        Notes
        -----
        This is the bare network; :func:`~mne_brainforge.apply_brainforge_inverse`
        and friends also re-reference, resample, window and scale the data.
        On the CPU the windows go through the network a few at a time
        (``CPU_CHUNK`` of :mod:`mne_brainforge.nn.model`): the activations
        then stay in the cache, which makes long recordings faster than one
        large batch does.

        Examples
        --------
        >>> import numpy as np
        >>> import mne_brainforge as bf
        >>> model = bf.load_pretrained()
        >>> ch_pos = np.array([ch["loc"][:3] for ch in evoked.info["chs"]])
        >>> rng = np.random.default_rng(0)
        >>> eeg = rng.standard_normal((2, len(ch_pos), model.n_times))
        >>> eeg -= eeg.mean(axis=1, keepdims=True)  # average reference
        >>> model.predict_regions(eeg, ch_pos).shape
        (2, 500, 100)
        """
        self.net.eval()
        net = self._inference_net()
        eeg = torch.as_tensor(np.asarray(eeg), dtype=torch.float32)
        scale = eeg.abs().amax(dim=(1, 2), keepdim=True).clamp_min(1e-30)
        device = next(net.parameters()).device
        eeg, topo = (eeg / scale).to(device), self.topomap(ch_pos).to(device)
        chunk = CPU_CHUNK if device.type == "cpu" else len(eeg)
        return (
            torch.cat(
                [
                    net(eeg[k : k + chunk], topo)
                    for k in range(0, len(eeg), max(chunk, 1))
                ]
            )
            .cpu()
            .numpy()
        )

    def _inference_net(self):
        """The network with each BatchNorm folded into the convolution before it.

        Same outputs (up to rounding) with one pass less over the activations;
        rebuilt whenever the weights change (their tensors' version counters).
        """
        tensors = [*self.net.parameters(), *self.net.buffers()]
        key = (
            id(self.net),
            *(t._version for t in tensors),
            *(t.device for t in tensors[:1]),
        )
        if self._fused is None or self._fused[0] != key:
            net = copy.deepcopy(self.net).eval()
            if isinstance(net.spatial, SpatialCNN):
                layers = list(net.spatial.blocks)
                for k, (conv, norm) in enumerate(zip(layers[:-1], layers[1:])):
                    if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                        layers[k], layers[k + 1] = (
                            fuse_conv_bn_eval(conv, norm),
                            nn.Identity(),
                        )
                net.spatial.blocks = nn.Sequential(*layers)
            self._fused = (key, net)
        return self._fused[1]

    def to_sources(self, regions):
        """Spread region values over the sources (piecewise constant).

        Parameters
        ----------
        regions : array-like, shape (..., n_regions, n_times)
            Region values, e.g. from :meth:`predict_regions`.

        Returns
        -------
        sources : ndarray, shape (..., n_sources, n_times)
            Each source gets the value of its region, in the order of
            :attr:`vertices` (left hemisphere, then right).

        Examples
        --------
        >>> regions = model.predict_regions(eeg, ch_pos)  # (2, 500, 100)
        >>> model.to_sources(regions).shape
        (2, 20484, 100)
        """
        return np.asarray(regions)[..., self.parcellation.labels, :]

    def save(self, fname, *, overwrite=False):
        """Save to one file: the state dict plus JSON metadata (no pickled code).

        Parameters
        ----------
        fname : path-like
            Output file (``.pt``).
        overwrite : bool
            Overwrite an existing file.

        See Also
        --------
        load

        Examples
        --------
        >>> import mne_brainforge as bf
        >>> model.save("my-model.pt", overwrite=True)
        >>> stc = bf.apply_brainforge_inverse(evoked, fwd, model="my-model.pt")
        """
        fname = Path(fname)
        if fname.exists() and not overwrite:
            raise FileExistsError(f"{fname} exists; pass overwrite=True.")
        meta = dict(
            format=_FORMAT,
            format_version=_FORMAT_VERSION,
            config=self.config,
            mne_brainforge=__version__,
            mne=mne.__version__,
            torch=torch.__version__,
        )
        parcellation = {}
        for key, value in self.parcellation.to_dict().items():
            if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
                parcellation[key] = torch.as_tensor(value)
            else:
                meta.setdefault("parcellation_json", {})[key] = _jsonable(value)
        state = {k: v.detach().cpu() for k, v in self.net.state_dict().items()}
        with atomic_path(fname) as tmp:
            torch.save(
                dict(
                    meta=json.dumps(meta), state_dict=state, parcellation=parcellation
                ),
                tmp,
            )

    @classmethod
    def load(cls, fname, *, device="cpu"):
        """Load a model saved by :meth:`save` (``torch.load(weights_only=True)``).

        Parameters
        ----------
        fname : path-like
            The model file.
        device : str
            Torch device to put the network on.

        Returns
        -------
        model : BrainForgeModel
            The model, in evaluation mode.

        See Also
        --------
        save, mne_brainforge.load_pretrained

        Examples
        --------
        >>> from mne_brainforge.nn import BrainForgeModel
        >>> model = BrainForgeModel.load("my-model.pt")
        """
        try:
            blob = torch.load(fname, map_location="cpu", weights_only=True)
            meta = json.loads(blob["meta"])
        except Exception as err:  # torch raises many types for bad files
            # torch's message advises weights_only=False, which would let the file
            # run code: keep only what went wrong, never that advice
            lines = str(err).strip().splitlines() or [type(err).__name__]
            reason = (
                "it holds Python objects besides tensors, which mne-brainforge never "
                "loads (they could run code)"
                if "weights_only" in str(err)
                else lines[0]
            )
            raise ValueError(
                f"{fname} is not a readable mne-brainforge model file ({reason}). "
                "Re-download it (mne_brainforge.fetch_weights) or retrain (train_model)."
            ) from None
        if (
            meta.get("format") != _FORMAT
            or meta.get("format_version", 0) > _FORMAT_VERSION
        ):
            raise ValueError(
                f"{fname} is not an mne-brainforge model of a supported version."
            )
        state = {k: v.numpy() for k, v in blob["parcellation"].items()}
        state.update(meta.get("parcellation_json", {}))
        parcellation = Parcellation.from_dict(state)
        config = meta["config"]
        net = BrainForgeNet(parcellation.n_regions, **config["net"])
        net.load_state_dict(blob["state_dict"])
        return cls(net.to(device).eval(), parcellation, config)


def _jsonable(value):
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
