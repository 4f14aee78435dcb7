"""The synthetic ultrasound video phantom: usvid's built-in dataset, generated on demand.

`generate_phantom_dataset(root, ...)` writes B-mode breast ultrasound videos with lesion boxes in
the CVA-BUS layout (COCO-video JSON), so a detector can be trained and evaluated with no
download; `python -m usvid.data.phantom --out datasets/phantom` does the same from a shell.
docs/en/phantom.md describes what is simulated and why.
"""

from .dataset import generate_phantom_dataset
from .params import PHANTOM_VERSION

__all__ = ["generate_phantom_dataset", "PHANTOM_VERSION"]
