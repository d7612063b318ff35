"""What the app injects for inference, by name (Litestar 2.23+ wants dependencies marked)."""

from typing import TypeAlias

from litestar.di import NamedDependency

from furrsight.inference.residency import Residency

# the web process's models: CPU-only sessions for single interactive images (see app.py)
ResidencyDep: TypeAlias = NamedDependency[Residency]
