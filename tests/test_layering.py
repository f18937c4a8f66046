"""Imports flow one way: page/CLI → registry → training → formats → models → generator → foundation, with
data, video and metrics beside the models (they use a Generator, never a network or a file format), editing and
faces beside the registry (they read their files through formats and hub and render through a Generator), and
projection above the registry (it fetches its perceptual network from the catalog); face recipes and their rendering
sit beside video, whose clips walk through faces.

Every module of the package is parsed, function-level imports included, and may import only its own layer and
the layers beneath it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "facegen"

# layer: the layers directly beneath it (what they sit on is beneath it too)
BENEATH: dict[str, tuple[str, ...]] = {
    "foundation": (),
    "generator": ("foundation",),
    "models": ("generator",),
    "formats": ("models",),
    "data, video, metrics": ("generator",),
    "training": ("formats", "data, video, metrics"),
    "registry": ("training",),
    "editing, faces": ("formats", "data, video, metrics"),
    "projection": ("registry", "editing, faces"),
    "app": ("projection",),
}
# each name stands for the module of that name and, for a package, every module inside it
MODULE_LAYERS: dict[str, str] = {
    "facegen.device": "foundation",
    "facegen.errors": "foundation",
    "facegen.hub": "foundation",
    "facegen.images": "foundation",
    "facegen.inference": "foundation",
    "facegen.latent": "foundation",
    "facegen.spec": "foundation",
    "facegen.limits": "foundation",
    "facegen.schema": "foundation",
    "facegen.jobs": "foundation",
    "facegen.public": "foundation",
    "facegen.generator": "generator",
    "facegen.models": "models",
    "facegen.formats": "formats",
    "facegen.data": "data, video, metrics",
    "facegen.video": "data, video, metrics",
    "facegen.sampling": "data, video, metrics",
    "facegen.metrics": "data, video, metrics",
    "facegen.compare": "data, video, metrics",
    "facegen.train": "training",
    "facegen.registry": "registry",
    "facegen.editing": "editing, faces",
    "facegen.faces": "editing, faces",
    "facegen.projection": "projection",
    # a face recipe and its rendering need only a Generator: clips walk through faces, so they sit beside video
    "facegen.editing.face": "data, video, metrics",
    "facegen.editing.identity": "data, video, metrics",
    "facegen.editing.layers": "data, video, metrics",
    "facegen.editing.render": "data, video, metrics",
    "facegen.cli": "app",
    "facegen.ui": "app",
    "facegen.__main__": "app",
}
PACKAGE_ROOT_LAYER = "generator"  # facegen/__init__.py re-exports the Generator and the errors


def below(layer: str) -> set[str]:
    """The layers a module of `layer` may import besides its own."""
    beneath = set(BENEATH[layer])
    for lower in BENEATH[layer]:
        beneath |= below(lower)
    return beneath


def layer_of(module: str) -> str | None:
    if module == "facegen":
        return PACKAGE_ROOT_LAYER
    owners = [name for name in MODULE_LAYERS if module == name or module.startswith(name + ".")]
    return MODULE_LAYERS[max(owners, key=len)] if owners else None


def package_modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def is_module(name: str) -> bool:
    path = PACKAGE_DIR.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(module: str, source: str, is_package: bool) -> set[str]:
    """Every facegen module that `source` imports anywhere in it (`from facegen import hub` counts as facegen.hub)."""
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                imported.add(submodule if is_module(submodule) else base)
    return {name for name in imported if name == "facegen" or name.startswith("facegen.")}


def upward_imports(module: str, source: str, is_package: bool = False) -> list[str]:
    layer = layer_of(module)
    allowed = {layer} | below(layer)
    return [
        f"{module} ({layer}) imports {target} ({layer_of(target)})"
        for target in sorted(imported_modules(module, source, is_package))
        if layer_of(target) not in allowed
    ]


def test_every_module_has_a_layer():
    unplaced = [name for name in package_modules() if layer_of(name) is None]
    assert not unplaced, f"give these modules a layer in MODULE_LAYERS of {Path(__file__).name}: {unplaced}"


def test_no_module_imports_a_higher_layer():
    violations = []
    for module, path in package_modules().items():
        violations += upward_imports(module, path.read_text(encoding="utf-8"), path.name == "__init__.py")
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("facegen.data.demo", "def load():\n    from facegen.registry import load_generator\n"),
        ("facegen.video", "import facegen.formats.checkpoint\n"),
        ("facegen.models.dcgan", "from facegen import formats\n"),
        ("facegen.formats.checkpoint", "from ..train import runs\n"),
    ],
)
def test_an_upward_import_is_caught(module, source):
    assert upward_imports(module, source) != []
