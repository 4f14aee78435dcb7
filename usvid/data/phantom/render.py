"""The scanner: from echogenicity and attenuation in view coordinates to an 8-bit B-mode frame.

Steps after speckle formation (speckle.py): depth attenuation computed from the attenuation map
(cumulative along each beam, so a strongly attenuating lesion casts a posterior shadow and a
fluid-filled one leaves posterior enhancement), a time-gain compensation that undoes only part
of the nominal tissue loss (deep tissue stays a little darker), a mild focal-zone brightening,
additive electronic noise (visible where the signal is weak), log compression of the envelope
to 8 bits over a fixed dynamic range, and the light smoothing scanners apply for display.
"""

from __future__ import annotations

import cv2
import numpy as np

from .anatomy import tissue_attenuation_per_pixel
from .speckle import PointSpreadFunction, speckle_envelope

TGC_COMPENSATION = 0.8  # share of the nominal tissue loss the time-gain compensation undoes
FOCAL_DEPTH, FOCAL_WIDTH, FOCAL_GAIN = 0.45, 0.2, 0.25  # of image height; amplitude gain
NOISE_DB = -72.0  # electronic noise amplitude, dB relative to the gland's mean echo
DISPLAY_FLOOR_DB, DISPLAY_CEILING_DB, DISPLAY_GAMMA = -40.0, 12.0, 1.5
REVERBERATION_SPACING = 0.055  # of image height: echoes bouncing between probe face and air
NOISE_BANK_EXTRA_ROWS = 64
DISPLAY_SMOOTHING = 0.8  # Gaussian sigma in pixels at 256 rows


class ImagingSystem:
    """One probe + scanner setting for one video (owns its electronic-noise bank)."""

    def __init__(self, height: int, width: int, rng: np.random.Generator):
        self.height, self.width = height, width
        self.psf = PointSpreadFunction.for_image(height)
        self.display_smoothing = max(0.5, DISPLAY_SMOOTHING * height / 256.0)
        depth = np.arange(height, dtype=np.float64)
        compensation = np.exp(0.5 * TGC_COMPENSATION * tissue_attenuation_per_pixel(height) * depth)
        focus = 1.0 + FOCAL_GAIN * np.exp(-0.5 * ((depth / height - FOCAL_DEPTH) / FOCAL_WIDTH) ** 2)
        self.depth_gain = (compensation * focus).astype(np.float32)[:, None]
        self._noise_bank = rng.standard_normal((height + NOISE_BANK_EXTRA_ROWS, width, 2), dtype=np.float32)
        self._noise_amplitude = np.float32(10 ** (NOISE_DB / 20.0) / np.sqrt(2.0))
        self._rng = rng
        spacing = REVERBERATION_SPACING * height
        echoes = [(k + 1) * spacing for k in range(6)]
        self._reverberation = sum(
            10 ** ((-6.0 - 7.0 * k) / 10.0) * np.exp(-0.5 * ((depth - y) / max(1.0, 0.006 * height)) ** 2)
            for k, y in enumerate(echoes)
        ).astype(np.float32)[:, None]

    def b_mode(
        self,
        echogenicity: np.ndarray,
        attenuation: np.ndarray,
        scatterers: np.ndarray,
        existence: np.ndarray,
        contact_gain: float = 1.0,
    ) -> np.ndarray:
        """uint8 (H, W) frame from linear echogenicity, attenuation (nepers / pixel, intensity)
        and the view's scatterers (H, W, 2) with their existence draws (H, W)."""
        envelope = speckle_envelope(echogenicity, scatterers, existence, self.psf)
        # Amplitude loss: half the cumulative intensity attenuation met on the way down.
        loss = np.exp(-0.5 * np.cumsum(attenuation, axis=0, dtype=np.float32))
        envelope *= loss * self.depth_gain * np.float32(contact_gain)
        return self._display(self._add_noise(envelope))

    def lost_contact(self, scatterers: np.ndarray, existence: np.ndarray) -> np.ndarray:
        """The probe lifted off the skin: only reverberation bands near the top, then noise."""
        echo = np.broadcast_to(self._reverberation, (self.height, self.width))
        envelope = speckle_envelope(np.ascontiguousarray(echo), scatterers, existence, self.psf)
        return self._display(self._add_noise(envelope * self.depth_gain))

    def _add_noise(self, envelope: np.ndarray) -> np.ndarray:
        """|envelope + n| with complex Gaussian n amplified by the TGC like the echoes; the
        noise is a randomly shifted window of a per-video bank (fresh-looking, no per-frame
        draw of H*W*2 normals)."""
        offset = int(self._rng.integers(0, NOISE_BANK_EXTRA_ROWS + 1))
        noise = self._noise_bank[offset : offset + self.height] * (self._noise_amplitude * self.depth_gain[..., None])
        return np.sqrt((envelope + noise[..., 0]) ** 2 + noise[..., 1] ** 2)

    def _display(self, envelope: np.ndarray) -> np.ndarray:
        """Log compression to 8 bits, then the scanner's light speckle-reduction smoothing."""
        db = 20.0 * np.log10(np.maximum(envelope, np.float32(1e-6)))
        level = np.clip((db - DISPLAY_FLOOR_DB) / (DISPLAY_CEILING_DB - DISPLAY_FLOOR_DB), 0.0, 1.0)
        image = (255.0 * level**DISPLAY_GAMMA).astype(np.float32)
        image = cv2.GaussianBlur(image, (0, 0), self.display_smoothing)
        return np.round(image).astype(np.uint8)
