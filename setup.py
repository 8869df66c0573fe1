"""Package discovery for the remapped top-level folders.

``pipeline/``, ``operators/`` and ``models/`` live at the top of the repository but install as
``describeme.pipeline`` etc. (``[tool.setuptools.package-dir]`` in pyproject.toml). setuptools'
``packages.find`` cannot remap folders, so the package list is computed here.
"""

from setuptools import find_packages, setup

ROOTS = {
    "describeme": "describeme",
    "describeme.pipeline": "pipeline",
    "describeme.operators": "operators",
    "describeme.models": "models",
}


def _packages() -> list[str]:
    names = []
    for package, folder in ROOTS.items():
        names.append(package)
        names.extend(f"{package}.{sub}" for sub in find_packages(folder))
    return sorted(set(names))


setup(packages=_packages())
