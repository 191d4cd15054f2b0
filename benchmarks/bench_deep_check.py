"""One thalamic dipole on the mixed (cortex + deep) template, through every method.

Run:  python benchmarks/bench_deep_check.py
A single hand check, not a benchmark: one left-thalamus dipole (random
orientation, 20 nA·m, an 8 Hz burst), BioSemi 64, 10 dB white noise, the true
noise covariance, the nominal head. Prints, per method, where the peak of the
estimate is (deep or cortex, distance to the true source) and the share of the
estimate's energy on deep sources.
"""

import os
import time

import mne
import numpy as np
from mne.inverse_sparse import gamma_map, mixed_norm

import mne_brainforge as bf
from mne_brainforge.head import source_gain

os.environ.setdefault("MNE_BRAINFORGE_WEIGHTS_FROM_CHECKOUT", "true")

montage = mne.channels.make_standard_montage("biosemi64")
info = mne.create_info(montage.ch_names, 100.0, "eeg").set_montage(montage)
fwd = bf.make_fsaverage_forward(info, deep=True, verbose=False)
gain, names = source_gain(fwd)
n_cortex = sum(s["nuse"] for s in fwd["src"][:2])
rng = np.random.default_rng(0)
times = np.arange(100) / 100.0
location = 20  # of the thalamus source space, left hemisphere
orientation = rng.standard_normal(3)
orientation /= np.linalg.norm(orientation)
wave = 20e-9 * np.sin(2 * np.pi * 8 * times) * np.exp(-(((times - 0.5) / 0.15) ** 2))
columns = slice(n_cortex + 3 * location, n_cortex + 3 * location + 3)
eeg = gain[:, columns] @ orientation[:, None] * wave
eeg -= eeg.mean(0)
noise = rng.standard_normal(eeg.shape)
noise -= noise.mean(0)
noise *= np.linalg.norm(eeg) / np.linalg.norm(noise) / np.sqrt(10)  # 10 dB
evoked = mne.EvokedArray(eeg + noise, mne.create_info(names, 100.0, "eeg"))
evoked.set_montage(montage)
evoked.set_eeg_reference(projection=True, verbose=False)
cov = mne.Covariance(
    np.eye(len(names)) * np.var(noise), names, [], evoked.info["projs"], 1000
)
truth = fwd["src"][2]["rr"][fwd["src"][2]["vertno"][location]]
positions = np.concatenate([s["rr"][s["vertno"]] for s in fwd["src"]])
loose = dict(surface=0.2, discrete=1.0)


def report(name, run):
    t0 = time.perf_counter()
    stc = run()
    elapsed = time.perf_counter() - t0
    if stc is None or not np.any(stc.data):
        print(f"{name:12s} no source found ({elapsed:.1f} s)")
        return
    peak = np.abs(stc.data).max(1)
    if len(peak) < len(positions):  # a sparse estimate: its vertices only
        full = np.zeros(len(positions))
        offsets = np.cumsum([0] + [s["nuse"] for s in fwd["src"]][:-1])
        for offset, s, active in zip(offsets, fwd["src"], stc.vertices):
            full[offset + np.searchsorted(s["vertno"], active)] = peak[: len(active)]
            peak = peak[len(active) :]
        peak = full
    i = int(peak.argmax())
    share = np.sum(peak[n_cortex:] ** 2) / np.sum(peak**2)
    where = "deep" if i >= n_cortex else "cortex"
    distance = 1e3 * np.linalg.norm(positions[i] - truth)
    print(
        f"{name:12s} peak on {where} {distance:.1f} mm from the source, deep "
        f"energy share {share:.2f} ({elapsed:.1f} s)"
    )


for method in ("sLORETA", "dSPM", "eLORETA"):

    def classical(method=method):
        inv = mne.minimum_norm.make_inverse_operator(
            evoked.info, fwd, cov, loose=loose, depth=0.8, verbose=False
        )
        return mne.minimum_norm.apply_inverse(
            evoked, inv, 1 / 9.0, method, verbose=False
        )

    report(method, classical)
report("sparse Bayes", lambda: bf.apply_sparse_bayes(evoked, fwd, cov, verbose=False))
report(
    "BrainForge",
    lambda: bf.apply_brainforge_inverse(evoked, fwd, noise_cov=cov, verbose=False),
)
sparse_loose = dict(surface=0.0, discrete=1.0)
report(
    "MxNE",
    lambda: mixed_norm(
        evoked, fwd, cov, alpha=30, loose=sparse_loose, depth=0.8, verbose=False
    ),
)
report(
    "gamma-MAP",
    lambda: gamma_map(
        evoked, fwd, cov, alpha=0.2, loose=sparse_loose, depth=0.8, verbose=False
    ),
)
