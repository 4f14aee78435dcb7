"""Speckle statistics of the phantom's imaging model, checked on the linear envelope before log
compression (the function the renderer itself uses)."""

import numpy as np

from usvid.data.phantom.speckle import RAYLEIGH_MEAN_OVER_STD, PointSpreadFunction, speckle_envelope


def _envelope(echogenicity: float, size: int = 256, seed: int = 0, height: int = 256):
    rng = np.random.default_rng(seed)
    echo = np.full((size, size), echogenicity, dtype=np.float32)
    scatterers = rng.standard_normal((size, size, 2), dtype=np.float32)
    existence = rng.random((size, size), dtype=np.float32)
    return speckle_envelope(echo, scatterers, existence, PointSpreadFunction.for_image(height))


def test_homogeneous_dense_tissue_gives_rayleigh_speckle():
    envelope = _envelope(1.0)[16:-16, 16:-16].astype(np.float64)
    ratio = envelope.mean() / envelope.std()
    assert abs(ratio - RAYLEIGH_MEAN_OVER_STD) < 0.06, ratio
    # Unit-energy PSF: the mean intensity equals the echogenicity.
    assert abs((envelope**2).mean() - 1.0) < 0.08
    # Kolmogorov-Smirnov distance to the Rayleigh CDF with the fitted scale.
    sorted_env = np.sort(envelope.ravel())
    sigma2 = (sorted_env**2).mean() / 2
    cdf = 1 - np.exp(-(sorted_env**2) / (2 * sigma2))
    empirical = np.arange(1, len(sorted_env) + 1) / len(sorted_env)
    assert np.abs(cdf - empirical).max() < 0.03


def test_weak_scattering_is_sparse_and_heavier_tailed_than_rayleigh():
    dense, sparse = _envelope(1.0), _envelope(10 ** (-30 / 10))

    def nakagami_m(env):
        return (env**2).mean() ** 2 / (env**2).var()

    assert abs(nakagami_m(dense[16:-16, 16:-16]) - 1.0) < 0.1
    assert nakagami_m(sparse[16:-16, 16:-16]) < 0.6
    assert abs(sparse.mean() / dense.mean() - 10 ** (-30 / 20)) < 0.02  # mean level kept


def test_point_spread_function_is_narrower_axially_than_laterally():
    psf = PointSpreadFunction.for_image(256)
    assert psf.axial_sigma < psf.lateral_sigma
    envelope = _envelope(1.0)
    centred = envelope - envelope.mean()

    def correlation(axis):
        shifted = np.roll(centred, 2, axis=axis)
        return (centred * shifted).mean() / centred.var()

    # Speckle grains are longer across the beam (columns) than along it (rows).
    assert correlation(axis=1) > correlation(axis=0) + 0.2
