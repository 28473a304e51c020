"""medseg: 3D medical image segmentation that is exact about geometry.

Subpackages follow the data flow: :mod:`medseg.io` → :mod:`medseg.transforms` / :mod:`medseg.data`
→ :mod:`medseg.models` / :mod:`medseg.training` → :mod:`medseg.inference` → :mod:`medseg.metrics`
→ :mod:`medseg.export`. Importing :mod:`medseg` itself is cheap (no torch).
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("medseg")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
