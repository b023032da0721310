"""Files shipped with the package for an installation without a source checkout."""

from pathlib import Path

RUNTIME_YAML = Path(__file__).resolve().with_name("runtime.yaml")
"""The runtime config genesis uses when no ``--config`` is given and the working directory has
no ``config/runtime.yaml``: a copy of the repository's ``config/runtime.yaml`` (a test checks
that the two are equal), also the template to copy to ``/etc/genesis/runtime.yaml``."""
