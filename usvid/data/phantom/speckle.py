"""Speckle: coherent summation of sub-resolution scatterers through the point-spread function.

The physics in three steps, all vectorised NumPy / OpenCV:

1. Scatterers: a complex Gaussian field (real and imaginary parts i.i.d. N(0, 1)) whose
   amplitude follows the tissue's echogenicity. Where echogenicity is low the scatterers also
   become sparse (each one present with probability `density`, louder so the mean intensity is
   kept): few scatterers per resolution cell give the heavier-tailed, Nakagami-like (m < 1)
   statistics of weakly scattering tissue; dense scatterers give Rayleigh speckle.
2. Beamforming: separable convolution with the point-spread function, a Gaussian-modulated pulse
   axially (a complex carrier under a Gaussian envelope) and a wider Gaussian beam laterally, so
   speckle grains are narrower in depth than across.
3. Envelope detection: |RF|. For a homogeneous, dense region it is Rayleigh distributed:
   mean / std = sqrt(pi / (4 - pi)) ~= 1.913.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

# Physical scale: the image depth spans 40 mm; a 5-7 MHz linear probe resolves ~0.22 mm axially
# (pulse-envelope sigma) and ~0.5 mm laterally (beam sigma).
IMAGE_DEPTH_MM = 40.0
AXIAL_SIGMA_MM = 0.22
LATERAL_SIGMA_MM = 0.5
MIN_AXIAL_SIGMA_PX, MIN_LATERAL_SIGMA_PX = 0.6, 1.2
# Below this intensity (-15 dB of gland) scatterers thin out instead of only getting weaker.
DENSE_SCATTERING_INTENSITY = 10 ** (-15.0 / 10.0)
RAYLEIGH_MEAN_OVER_STD = float(np.sqrt(np.pi / (4.0 - np.pi)))


def _unit_energy(kernel: np.ndarray) -> np.ndarray:
    return kernel / np.sqrt(np.sum(np.abs(kernel) ** 2))


@dataclass(frozen=True)
class PointSpreadFunction:
    """Separable PSF; the 2-D kernel has unit energy so RF power equals echogenicity."""

    axial: np.ndarray  # complex, along rows (depth)
    lateral: np.ndarray  # real, along columns
    axial_sigma: float
    lateral_sigma: float

    @classmethod
    def for_image(cls, height: int) -> PointSpreadFunction:
        """The PSF in pixels for an image whose `height` spans IMAGE_DEPTH_MM."""
        px_per_mm = height / IMAGE_DEPTH_MM
        sa = max(MIN_AXIAL_SIGMA_PX, AXIAL_SIGMA_MM * px_per_mm)
        sl = max(MIN_LATERAL_SIGMA_PX, LATERAL_SIGMA_MM * px_per_mm)
        ya = np.arange(-int(np.ceil(3 * sa)), int(np.ceil(3 * sa)) + 1)
        xl = np.arange(-int(np.ceil(3 * sl)), int(np.ceil(3 * sl)) + 1)
        wavelength = max(2.2, 2.5 * sa)  # about 1.5 carrier cycles under the envelope
        axial = np.exp(-0.5 * (ya / sa) ** 2) * np.exp(2j * np.pi * ya / wavelength)
        lateral = np.exp(-0.5 * (xl / sl) ** 2)
        return cls(_unit_energy(axial), _unit_energy(lateral), sa, sl)

    def apply(self, field: np.ndarray) -> np.ndarray:
        """Convolves a complex field stored as (H, W, 2) float32 [real, imag]; same layout out."""
        # cv2.filter2D correlates: flip the kernels to convolve.
        k_re = np.ascontiguousarray(self.axial.real[::-1, None], dtype=np.float32)
        k_im = np.ascontiguousarray(self.axial.imag[::-1, None], dtype=np.float32)
        by_re = cv2.filter2D(field, -1, k_re, borderType=cv2.BORDER_REFLECT)
        by_im = cv2.filter2D(field, -1, k_im, borderType=cv2.BORDER_REFLECT)
        axial = np.stack([by_re[..., 0] - by_im[..., 1], by_im[..., 0] + by_re[..., 1]], axis=-1)
        k_lat = np.ascontiguousarray(self.lateral[None, ::-1], dtype=np.float32)
        return cv2.filter2D(axial, -1, k_lat, borderType=cv2.BORDER_REFLECT)


def scatterer_amplitude(echogenicity: np.ndarray, existence: np.ndarray) -> np.ndarray:
    """Per-pixel scatterer amplitude: sqrt(echogenicity) where scattering is dense; below
    DENSE_SCATTERING_INTENSITY only a `density` share of scatterers (those whose fixed uniform
    `existence` draw is below it) remain, each louder, so the mean intensity is unchanged."""
    density = np.minimum(1.0, echogenicity / np.float32(DENSE_SCATTERING_INTENSITY))
    present = existence < density
    amplitude = np.sqrt(echogenicity / np.maximum(density, np.float32(1e-12)))
    return np.where(present, amplitude, np.float32(0.0)).astype(np.float32)


def speckle_envelope(
    echogenicity: np.ndarray, scatterers: np.ndarray, existence: np.ndarray, psf: PointSpreadFunction
) -> np.ndarray:
    """Linear speckle envelope |PSF * (amplitude * scatterers)|, before gain and log compression.

    echogenicity: (H, W) linear intensity; scatterers: (H, W, 2) float32 i.i.d. N(0, 1) real and
    imaginary parts; existence: (H, W) uniform [0, 1) draws fixed per scatterer.
    """
    amplitude = scatterer_amplitude(echogenicity.astype(np.float32), existence)
    field = (scatterers * (amplitude[..., None] / np.float32(np.sqrt(2.0)))).astype(np.float32)
    rf = psf.apply(field)
    return np.sqrt(rf[..., 0] ** 2 + rf[..., 1] ** 2)
