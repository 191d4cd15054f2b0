"""Sensor-space synthesis against any ``mne.Forward``: EEG = L J + noise.

SNR convention (used everywhere in mne-brainforge): the ratio, in dB, of the
signal power to the noise power over the whole window, both after average
reference, summed over the channels in use::

    SNR_dB = 10 log10( ||P L J||_F^2 / ||P N||_F^2 )

with ``P`` the average-reference projector. The noise is scaled to hit the
requested SNR exactly for each sample.
"""

import numpy as np

#: Noise models understood by :func:`make_noise`.
NOISE_KINDS = ("white", "pink", "spatial", "line")


def average_reference(data, mask=None):
    """Re-reference to the average of the channels in use (``mask``), in a copy."""
    data = np.array(data, dtype=np.float64)
    if mask is None:
        return data - data.mean(axis=-2, keepdims=True)
    mean = data[..., mask, :].mean(axis=-2, keepdims=True)
    data -= mean
    data[..., ~mask, :] = 0.0
    return data


def pink_noise(shape, rng, exponent=1.0):
    """Gaussian noise with a ``1/f**exponent`` power spectrum along the last axis."""
    n_times = shape[-1]
    spectrum = rng.standard_normal(
        shape[:-1] + (n_times // 2 + 1,)
    ) + 1j * rng.standard_normal(shape[:-1] + (n_times // 2 + 1,))
    freqs = np.fft.rfftfreq(n_times)
    freqs[0] = freqs[1]  # no infinite DC
    spectrum *= freqs ** (-exponent / 2.0)
    noise = np.fft.irfft(spectrum, n=n_times, axis=-1)
    return noise / noise.std(axis=-1, keepdims=True)


def make_noise(kind, n_channels, n_times, sfreq, rng, *, mixing=None, line_freq=50.0):
    """Draw one unit-scale noise matrix.

    Parameters
    ----------
    kind : str
        ``'white'`` (independent Gaussian), ``'pink'`` (independent 1/f),
        ``'spatial'`` (1/f noise mixed across channels by ``mixing``: spatially
        coloured like real background activity), or ``'line'`` (``line_freq``
        Hz and its 2nd harmonic, random amplitude and phase per channel).
    n_channels, n_times : int
        Shape of the noise.
    sfreq : float
        Sampling rate (Hz).
    rng : numpy.random.Generator
        Random generator.
    mixing : ndarray, shape (n_channels, n_components) | None
        Spatial mixing for ``'spatial'`` (e.g. the gain of random cortical
        sources).
    line_freq : float
        Power-line frequency (50 or 60 Hz).

    Returns
    -------
    noise : ndarray, shape (n_channels, n_times)
        The noise, unit scale (its amplitude is set by
        :func:`add_noise_at_snr`).

    See Also
    --------
    add_noise_at_snr

    Examples
    --------
    >>> import numpy as np
    >>> from mne_brainforge.simulation import make_noise
    >>> rng = np.random.default_rng(0)
    >>> noise = make_noise("pink", 64, 250, 250.0, rng)
    >>> noise.shape
    (64, 250)
    >>> line = make_noise("line", 64, 250, 250.0, rng, line_freq=60.0)
    """
    if kind == "white":
        return rng.standard_normal((n_channels, n_times))
    if kind == "pink":
        return pink_noise((n_channels, n_times), rng)
    if kind == "spatial":
        if mixing is None:
            raise ValueError("Spatially coloured noise needs a mixing matrix.")
        return mixing @ pink_noise((mixing.shape[1], n_times), rng)
    if kind == "line":
        if line_freq >= sfreq / 2:
            raise ValueError(
                f"Line noise at {line_freq:g} Hz cannot be sampled at {sfreq:g} Hz."
            )
        t = np.arange(n_times) / sfreq
        noise = np.zeros((n_channels, n_times))
        for harmonic, scale in ((1, 1.0), (2, 0.3)):
            if harmonic * line_freq < sfreq / 2:
                phase = rng.uniform(0, 2 * np.pi, (n_channels, 1))
                amp = scale * rng.uniform(0.2, 1.0, (n_channels, 1))
                noise += amp * np.sin(2 * np.pi * harmonic * line_freq * t + phase)
        return noise
    raise ValueError(f"Unknown noise kind {kind!r}; use one of {NOISE_KINDS}.")


def add_noise_at_snr(signal, noise, snr_db, mask=None):
    """Average-reference signal and noise and add the noise scaled to ``snr_db``.

    Parameters
    ----------
    signal, noise : ndarray, shape (n_channels, n_times)
        Noise-free sensor data and unit noise.
    snr_db : float | None
        Target SNR (module docstring); None adds no noise.
    mask : ndarray of bool, shape (n_channels,) | None
        Channels in use (others are zeroed); None uses all.

    Returns
    -------
    data : ndarray, shape (n_channels, n_times)
        Average-referenced ``signal + scaled noise``.

    See Also
    --------
    make_noise, measured_snr

    Examples
    --------
    >>> import numpy as np
    >>> from mne_brainforge.simulation import add_noise_at_snr, make_noise, measured_snr
    >>> rng = np.random.default_rng(0)
    >>> signal = rng.standard_normal((64, 1)) * np.sin(np.linspace(0, np.pi, 250))
    >>> noisy = add_noise_at_snr(signal, make_noise("white", 64, 250, 250.0, rng), 10.0)
    >>> round(float(measured_snr(signal, noisy)), 6)
    10.0
    """
    signal = average_reference(signal, mask)
    if snr_db is None:
        return signal
    noise = average_reference(noise, mask)
    power_signal, power_noise = np.sum(signal**2), np.sum(noise**2)
    if power_noise == 0 or power_signal == 0:
        raise ValueError("Cannot set an SNR with an all-zero signal or noise.")
    scale = np.sqrt(power_signal / (power_noise * 10 ** (snr_db / 10)))
    return signal + scale * noise


def measured_snr(signal, noisy, mask=None):
    """SNR (dB) of ``noisy`` relative to its noise-free ``signal``.

    Both are average-referenced over the channels in use; the noise is their
    difference. See :mod:`mne_brainforge.simulation.synthesis` for the SNR
    convention.

    Parameters
    ----------
    signal : ndarray, shape (n_channels, n_times)
        Noise-free sensor data.
    noisy : ndarray, shape (n_channels, n_times)
        The same data with noise (e.g. from :func:`add_noise_at_snr`).
    mask : ndarray of bool, shape (n_channels,) | None
        Channels in use; None uses all.

    Returns
    -------
    snr_db : float
        The SNR in dB.

    See Also
    --------
    add_noise_at_snr

    Examples
    --------
    >>> from mne_brainforge.simulation import add_noise_at_snr, measured_snr
    >>> noisy = add_noise_at_snr(signal, noise, 5.0, mask)
    >>> round(float(measured_snr(signal, noisy, mask)), 6)
    5.0
    """
    signal = average_reference(signal, mask)
    noise = average_reference(noisy, mask) - signal
    return 10 * np.log10(np.sum(signal**2) / np.sum(noise**2))


def check_snr_range(snr_range):
    """Validate an SNR range in dB; return it as a (low, high) float tuple."""
    low, high = (float(v) for v in snr_range)
    if not (np.isfinite(low) and np.isfinite(high)) or low > high:
        raise ValueError(
            f"snr_range must be (low, high) in dB with low <= high, got {snr_range!r}; "
            "e.g. (0, 30)."
        )
    return low, high
