"""Package discovery, the one part of the build pyproject.toml cannot state: every product package is found (a new
sub-package cannot be left out of the wheel), and the top-level templates/ folder ships as `app.templates`."""

from setuptools import find_packages, setup

PRODUCT = ["arena", "training", "app", "deconv_arena"]

setup(
    packages=find_packages(include=[p for name in PRODUCT for p in (name, f"{name}.*")]) + ["app.templates"],
    package_dir={"app.templates": "templates"},
)
