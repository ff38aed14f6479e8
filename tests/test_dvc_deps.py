"""Every stage in dvc.yaml depends on all the code its script runs, so `dvc repro` reruns a
stage whenever that code changes.

The code a stage runs: its script and the transitive closure of its imports inside
src/ser, lazy imports inside functions included (read with ast, nothing is imported).
Importing ``ser.a.b`` runs ``ser/__init__.py`` and ``ser/a/__init__.py`` too, so those count.
A dep covers a file when it is that file or a folder above it.
"""

from __future__ import annotations

import ast
import copy
import shlex
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src"


def expanded_stages(dvc: dict, params: dict) -> dict[str, dict]:
    """dvc.yaml's stages by name, each ``foreach`` stage once per item (``name@item``)."""
    stages = {}
    for name, stage in dvc["stages"].items():
        if "foreach" not in stage:
            stages[name] = stage
            continue
        items = stage["foreach"]
        if isinstance(items, str):  # ${split.folds}: a list in params.yaml
            value = params
            for key in items.removeprefix("${").removesuffix("}").split("."):
                value = value[key]
            items = value
        for item in items:
            text = yaml.safe_dump(stage["do"]).replace("${item}", str(item))
            stages[f"{name}@{item}"] = yaml.safe_load(text)
    return stages


def script_of(stage: dict) -> Path:
    """The Python script a stage's cmd runs (``python stages/x.py ...``)."""
    words = shlex.split(stage["cmd"])
    return ROOT / next(word for word in words if word.endswith(".py"))


def _module_file(name: str) -> Path | None:
    """src/ser/a/b.py or src/ser/a/b/__init__.py for module ser.a.b; None if neither."""
    base = SOURCE.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _with_parents(name: str) -> list[str]:
    """ser.a.b -> [ser, ser.a, ser.a.b]: importing a module runs its packages first."""
    parts = name.split(".")
    return [".".join(parts[: end + 1]) for end in range(len(parts))]


def _all_ser_modules() -> list[str]:
    return sorted(_module_name(path) for path in (SOURCE / "ser").rglob("*.py"))


@cache
def imported_modules(path: Path) -> frozenset[str]:
    """The ser modules a file imports directly, anywhere in it (functions too).

    Besides import statements: ``import_module(f"ser.pkg.{name}")`` counts as every module
    of ser.pkg, and a string that is exactly a ser module's name (a module handed to
    something that imports it, such as map_clips' ``preload``) as that module.
    """
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else None
    if package is None and path.is_relative_to(SOURCE):
        package = _module_name(path).rpartition(".")[0]
    known = set(_all_ser_modules())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found.add(base)
            # `from ser.x import y`: y is a submodule or a name defined in ser.x
            found.update(f"{base}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value in known:
                found.add(node.value)
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            if isinstance(first, ast.Constant) and str(first.value).startswith("ser."):
                prefix = str(first.value)
                found.update(name for name in known if name.startswith(prefix))
    modules = set()
    for name in found:
        if name == "ser" or name.startswith("ser."):
            modules.update(part for part in _with_parents(name) if _module_file(part))
    return frozenset(modules)


def code_closure(script: Path) -> set[Path]:
    """The script and every file under src/ser that running it may import."""
    files, pending = {script}, [script]
    while pending:
        for name in imported_modules(pending.pop()):
            module = _module_file(name)
            if module not in files:
                files.add(module)
                pending.append(module)
    return files


def covered(path: Path, deps: list[str]) -> bool:
    return any(path == ROOT / dep or (ROOT / dep) in path.parents for dep in deps)


def _dep_paths(stage: dict) -> list[str]:
    return [dep if isinstance(dep, str) else next(iter(dep)) for dep in stage.get("deps", [])]


def uncovered(stages: dict[str, dict]) -> dict[str, list[str]]:
    """{stage: [files its script runs that no dep covers]} for the stages that lack some."""
    missing = {}
    for name, stage in stages.items():
        deps = _dep_paths(stage)
        lacking = sorted(
            str(path.relative_to(ROOT))
            for path in code_closure(script_of(stage))
            if not covered(path, deps)
        )
        if lacking:
            missing[name] = lacking
    return missing


def _load() -> dict[str, dict]:
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    return expanded_stages(dvc, params)


def test_every_stage_depends_on_all_the_code_it_runs():
    missing = uncovered(_load())
    assert not missing, "dvc.yaml deps miss code the stage runs:\n" + "\n".join(
        f"  {stage}: {', '.join(files)}" for stage, files in missing.items()
    )


def test_every_code_dep_exists():
    absent = sorted(
        {
            dep
            for stage in _load().values()
            for dep in _dep_paths(stage)
            if dep.startswith(("src/", "stages/")) and not (ROOT / dep).exists()
        }
    )
    assert not absent, f"dvc.yaml names code that does not exist: {absent}"


def test_a_removed_dep_is_reported_with_its_stage():
    stages = copy.deepcopy(_load())
    stages["featurize"]["deps"].remove("src/ser/params.py")
    assert uncovered(stages) == {"featurize": ["src/ser/params.py"]}


def test_a_folder_dep_covers_the_files_below_it():
    stages = copy.deepcopy(_load())
    train = stages["train"]
    train["deps"] = [dep for dep in train["deps"] if not dep.startswith("src/ser/model")]
    assert "src/ser/model/inference.py" in uncovered(stages)["train"]
    train["deps"].append("src/ser/model")
    assert "train" not in uncovered(stages)


def test_lazy_imports_inside_functions_count():
    # ser.features.extract imports ser.features.store only inside functions.
    assert "ser.features.store" in imported_modules(SOURCE / "ser" / "features" / "extract.py")
