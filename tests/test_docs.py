"""Documentation stays true: API page current, README commands, common parameter docs."""

import importlib.util
import inspect
import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import skinr

from .conftest import ALL_ESTIMATORS, make_fast

ROOT = Path(__file__).resolve().parent.parent
COMMON = [
    "learning_rate",
    "max_iter",
    "batch_size",
    "lr_schedule",
    "tol",
    "n_iter_no_change",
    "early_stopping",
    "validation_fraction",
    "validation_interval",
    "warm_start",
    "random_state",
    "device",
    "verbose",
    "predict_batch_size",
    "data_range",
    "domain",
]


def test_api_reference_is_current():
    """One page per public name, and the index: none stale, missing or left over."""
    builder = runpy.run_path(str(ROOT / "docs" / "build_api.py"))
    expected = builder["pages"]()
    folder = ROOT / "docs" / "reference"
    assert {p.name for p in folder.glob("*.md")} == set(expected), (
        "docs/reference/ has pages missing or left over; run python docs/build_api.py"
    )
    for name, text in expected.items():
        assert (folder / name).read_text() == text, (
            f"docs/reference/{name} is stale; run python docs/build_api.py"
        )
    # Every public estimator has its page.
    assert {f"skinr.{name}.md" for name in skinr.ESTIMATORS if name != "LatentCodec"} <= set(
        expected
    )


def test_readme_commands_match_ci():
    readme = (ROOT / "README.md").read_text()
    test_line = 'pip install -e ".[test]" && python -m pytest'
    assert re.search(r'^pip install "\.\[cli\]" && skinr fit ', readme, re.M)
    assert test_line in readme.splitlines()
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_line in ci_lines  # CI runs the README's line itself
    assert f"README_TEST_LINE='{test_line}'" in ci_lines


def _param_docs(cls):
    doc = inspect.getdoc(cls)
    section = doc.split("Parameters\n----------\n")[1].split("\n\nAttributes")[0]
    blocks = re.split(r"\n(?=\w[\w, ]* : )", section)
    return {b.split(" : ")[0]: b for b in blocks}


def test_common_parameters_documented_identically():
    reference = _param_docs(skinr.SIREN)
    for cls in ALL_ESTIMATORS:
        docs = _param_docs(cls)
        params = inspect.signature(cls).parameters
        assert set(docs) >= set(params) - {"first_omega_0", "hidden_omega_0"}, cls
        for name in COMMON:
            if name in ("learning_rate", "max_iter"):  # described per estimator
                assert name in docs
                continue
            # The first line carries the default, which may differ; the text may not.
            body = docs[name].split("\n", 1)[1]
            assert body == reference[name].split("\n", 1)[1], f"{cls.__name__}.{name}"


def _attribute_docs(cls):
    doc = inspect.getdoc(cls)
    section = doc.split("Attributes\n----------\n")[1].split("\n\nSee Also")[0]
    blocks = re.split(r"\n(?=\w[\w, ]* : )", section)
    return {name: b for b in blocks for name in b.split(" : ")[0].split(", ")}


def test_every_fitted_attribute_is_documented(Estimator, image_signal):
    """What a fit produces (attributes and properties ending in _) is in the docstring."""
    X, y, _ = image_signal
    model = make_fast(Estimator).fit(X, y)
    fitted = {name for name in vars(model) if name.endswith("_") and not name.startswith("_")}
    fitted |= {
        name
        for name, value in inspect.getmembers(type(model))
        if isinstance(value, property) and name.endswith("_") and not name.startswith("_")
    }
    documented = _attribute_docs(Estimator)
    assert fitted <= set(documented), sorted(fitted - set(documented))


def test_common_attributes_come_from_one_table():
    from skinr._core.params import COMMON_ATTRIBUTE_DOCS

    for cls in ALL_ESTIMATORS:
        docs = _attribute_docs(cls)
        for entry, (kind, text) in COMMON_ATTRIBUTE_DOCS.items():
            block = docs[entry.split(", ")[0]]
            assert block.startswith(f"{entry} : {kind}\n"), (cls.__name__, entry)
            if entry != "domain_":  # its text says "footprint" where the domain is one
                assert " ".join(block.split("\n", 1)[1].split()) == " ".join(text.split())


def test_code_passes_ruff():
    """The lint and format rules of pyproject.toml hold for the whole tree."""
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the test extra)")
    paths = ["skinr", "tests", "benchmarks", "examples", "docs"]
    lint = subprocess.run([ruff, "check", *paths], cwd=ROOT, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout
    fmt = subprocess.run(
        [ruff, "format", "--check", *paths], cwd=ROOT, capture_output=True, text=True
    )
    assert fmt.returncode == 0, fmt.stdout


def test_readme_quickstart_runs():
    """The README's Python quickstart runs as printed and its search ranks by PSNR."""
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Quickstart\n\n```python\n(.*?)```", readme, re.S).group(1)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["zoomed"].shape == (128, 128)
    assert namespace["search"].best_score_ > 20  # dB


def test_readme_inverse_problem_snippet_runs():
    """The README's CT snippet runs as printed (its 300 steps cut to 20 here: the
    benchmark page holds the quality) and reconstructs the phantom's square."""
    pytest.importorskip("skimage")
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"## Inverse problems.*?```python\n(.*?)```", readme, re.S).group(1)
    assert "max_iter=300" in code
    namespace = {}
    exec(compile(code.replace("max_iter=300", "max_iter=20"), "README.md", "exec"), namespace)
    assert namespace["reconstruction"].shape == namespace["phantom"].shape == (100, 100)
    assert np.isfinite(namespace["reconstruction"]).all()


def test_extending_example_runs_with_the_whole_contract(tmp_path):
    """docs/extending.md's minimal architecture fits, scores, clones and streams as printed."""
    from sklearn.base import clone

    from skinr import ESTIMATORS

    page = (ROOT / "docs" / "extending.md").read_text()
    # An architecture is added through public names only.
    assert "skinr._" not in page
    code = re.search(r"## A minimal architecture.*?```python\n(.*?)```", page, re.S).group(1)
    namespace = {}
    registered = dict(ESTIMATORS)
    try:
        exec(compile(code, "docs/extending.md", "exec"), namespace)
        model, X, y = namespace["model"], namespace["X"], namespace["y"]
        # Registered as the page says: a model file rebuilds it.
        loaded = skinr.load(model.save(tmp_path / "gauss.skinr"))
        np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    finally:
        ESTIMATORS.clear()
        ESTIMATORS.update(registered)
    assert model.score(X, y) > 25  # dB
    assert model.count_flops(X) == model.module_.flops(len(X))
    assert clone(model).get_params()["sigma"] == model.sigma
    streamed = clone(model).set_params(batch_size=256, max_iter=20).fit(X, y)
    assert streamed.loss_curve_[-1] < streamed.loss_curve_[0]


def test_inverse_problems_page_runs(monkeypatch):
    """docs/inverse.md's examples run as printed (deepinv's only where it is installed),
    and what they reconstruct resembles the image."""
    pytest.importorskip("skimage")  # the page compares with scikit-image's routines
    from skinr.metrics import psnr

    page = (ROOT / "docs" / "inverse.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, re.S)
    namespace = {}
    for code in blocks:
        if "deepinv" in code and importlib.util.find_spec("deepinv") is None:
            continue
        exec(compile(code, "docs/inverse.md", "exec"), namespace)
    image, sharp = namespace["image"], namespace["sharp"]
    low = namespace["low"]
    assert psnr(image, sharp, data_range=1) > psnr(
        image, np.kron(low, np.ones((4, 4))), data_range=1
    )
    assert namespace["reconstruction"].shape == (64, 64)
    assert psnr(namespace["phantom"], namespace["reconstruction"], data_range=1) > 15
    assert namespace["inpainted"].shape == image.shape


def test_documentation_site_builds_with_warnings_as_errors(tmp_path):
    """The site (MkDocs + mkdocstrings + mkdocs-gallery, mkdocs.yml) builds in strict
    mode: a broken link, anchor, docstring or example fails the suite."""
    for module in ("mkdocs", "material", "mkdocstrings_handlers.python", "mkdocs_gallery"):
        pytest.importorskip(module)
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        env={
            **os.environ,
            "NO_MKDOCS_2_WARNING": "1",
            "MPLBACKEND": "Agg",
            "SKINR_GALLERY_TINY": "1",  # every example runs and draws, in seconds
        },
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (site / "search" / "search_index.json").stat().st_size > 0
    index = (site / "reference" / "index.html").read_text()
    assert "skinr.io.read" in index
    # A page per class: its parameters and its inherited public methods, no dunders.
    siren = (site / "reference" / "skinr.SIREN" / "index.html").read_text()
    assert "max_time" in siren and "predict_signal" in siren
    assert "__abstractmethods__" not in siren and "__module__" not in siren
    gallery = (site / "gallery" / "index.html").read_text()
    assert "fit_image" in gallery
    # Every example draws a figure (7 of 9 drew none).
    for example in sorted((ROOT / "examples").glob("*.py")):
        figures = list((site / "gallery").rglob(f"*{example.stem}*.png"))
        assert figures, f"the gallery shows no figure of examples/{example.name}"


def _cli_page_tables(page: str) -> dict[str, str]:
    """The CLI page's sections (by ``## `` heading) -> their text."""
    parts = re.split(r"^## ", page, flags=re.M)
    return {part.split("\n", 1)[0]: part for part in parts[1:]}


def test_cli_page_documents_every_option_and_metrics_key(tmp_path):
    """docs/cli.md names every option of every command, and exactly the keys
    metrics.json holds; its Python examples run as printed."""
    pytest.importorskip("matplotlib")
    from skinr.cli import build_parser, main

    page = (ROOT / "docs" / "cli.md").read_text()
    sections = _cli_page_tables(page)
    commands = build_parser()._subparsers._group_actions[0].choices
    for name, parser in commands.items():
        section = sections[f"`skinr {name}`"]
        for action in parser._actions:
            if action.dest == "help":
                continue
            label = action.option_strings[0] if action.option_strings else action.metavar
            assert f"`{label}" in section, f"skinr {name}: {label} is not documented"
    assert (
        main(
            [
                "fit",
                "--size",
                "12",
                "--model",
                "SIREN",
                "--width",
                "8",
                "--depth",
                "1",
                "--steps",
                "2",
                "--quiet",
                "--out",
                str(tmp_path),
            ]
        )
        == 0
    )
    produced = json.loads((tmp_path / "metrics.json").read_text())
    schema = page.split("`metrics.json`:")[1].split("\n## ")[0]
    documented = set()
    for row in re.findall(r"^\| (.+?) \|", schema, re.M):
        documented |= set(re.findall(r"`(\w+)`", row))
    assert documented == set(produced), documented ^ set(produced)
    header = (tmp_path / "history.csv").read_text().splitlines()[0].split(",")
    assert all(f"`{column}`" in sections["`skinr fit`"] for column in header)
    namespace = {}
    for code in re.findall(r"```python\n(.*?)```", page, re.S):
        exec(compile(code, "docs/cli.md", "exec"), namespace)
    assert namespace["render"].shape == (128, 128) and namespace["upsampled"].shape == (3200,)


# numpydoc rules skinr does not follow: every public object has See Also / Examples
# only where they help, and summaries may run to a second line.
NUMPYDOC_IGNORED = {"GL08", "SA01", "EX01", "ES01", "RT02", "PR02", "SS06"}


def _public_api():
    names = ["skinr.load"]
    for cls in ALL_ESTIMATORS:
        names.append(f"skinr.{cls.__name__}")
    names += [f"skinr.BaseINR.{m}" for m in ("fit", "predict", "score", "count_flops", "save")]
    names += ["skinr.BaseINR.predict_signal", "skinr.BaseINR.render"]
    names += ["skinr.compare", "skinr.io.read", "skinr.io.write", "skinr.io.Signal"]
    for module in ("signals", "metrics", "datasets", "model_selection", "inverse"):
        names += [
            f"skinr.{module}.{n}"
            for n in getattr(skinr, module).__all__
            if not isinstance(getattr(getattr(skinr, module), n), dict)
        ]
    return names


@pytest.mark.parametrize("name", _public_api())
def test_numpydoc_valid(name):
    validate = pytest.importorskip("numpydoc.validate").validate
    errors = [e for e in validate(name)["errors"] if e[0] not in NUMPYDOC_IGNORED]
    assert not errors, errors


def _markdown_python_blocks():
    for page in sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]):
        for number, code in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S)):
            yield pytest.param(code, id=f"{page.relative_to(ROOT)}#{number}")


@pytest.mark.parametrize("code", list(_markdown_python_blocks()))
def test_documented_python_compiles_and_names_exist(code):
    """Every Python block in the docs is valid Python and uses only names skinr has."""
    compile(code, "<docs>", "exec")
    for dotted in set(re.findall(r"\bskinr\.(\w+(?:\.\w+)?)", code)):
        obj = skinr
        for part in dotted.split("."):
            obj = getattr(obj, part, None)
            assert obj is not None, f"skinr.{dotted} does not exist"


def test_html_repr_links_each_estimator_to_its_page(Estimator):
    link = Estimator()._get_doc_link()
    page = link.split("/blob/main/", 1)[1]
    assert (ROOT / page).is_file(), link
    assert link in Estimator()._repr_html_()


def _modules_with_examples():
    import pkgutil

    for info in pkgutil.iter_modules(skinr.__path__):
        if info.name.startswith("_") or info.name in {"cli", "__main__"}:
            continue
        module = importlib.import_module(f"skinr.{info.name}")
        if ">>>" in inspect.getsource(module):
            yield pytest.param(module, id=info.name)


# Examples that reach an optional extra (scikit-image: SSIM, radon), skipped without it
# (CI's floors job installs the core dependencies only).
EXAMPLES_NEED = {"skinr.comparison": "skimage", "skinr.inverse": "skimage"}


@pytest.mark.parametrize("module", list(_modules_with_examples()))
def test_docstring_examples_run(module):
    """Every ``>>>`` example in a public module's docstrings runs and prints what it shows."""
    import doctest

    if module.__name__ in EXAMPLES_NEED:
        pytest.importorskip(EXAMPLES_NEED[module.__name__])

    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    # Objects re-exported from private modules (skinr.inverse.Radon lives in
    # skinr.inverse.radon) are found through the module's __all__.
    found = {t.name: t for t in finder.find(module, module.__name__)}
    for name in getattr(module, "__all__", []):
        obj = getattr(module, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            found.update({t.name: t for t in finder.find(obj, f"{module.__name__}.{name}")})
    tests = [t for t in found.values() if t.examples]
    assert tests, f"{module.__name__} has no examples"
    report = []
    for test in tests:
        runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)[-4000:]


@pytest.mark.parametrize(
    "cls", [skinr.BaseINR, *skinr.ESTIMATORS.values()], ids=lambda c: c.__name__
)
def test_every_signature_takes_the_common_parameter_table(cls):
    """Each common parameter's default, constraint and doc come from one row of
    ``COMMON_PARAMETERS``: every estimator's ``__init__`` has the row's default, its
    constraints are the row's, and its docstring the row's text."""
    from skinr._core.params import COMMON_PARAMETERS, PER_ESTIMATOR

    signature = inspect.signature(cls.__init__).parameters
    for name, row in COMMON_PARAMETERS.items():
        assert name in signature, f"{cls.__name__} lacks {name}"
        assert signature[name].kind is inspect.Parameter.KEYWORD_ONLY, name
        if row.default is not PER_ESTIMATOR:
            assert signature[name].default == row.default, (cls.__name__, name)
        assert cls._parameter_constraints[name] == row.constraints, (cls.__name__, name)
        if row.doc is not None and cls is not skinr.BaseINR:
            first_line = row.doc.split("\n")[0]
            assert f"    {name} : {row.kind}, default=" in cls.__doc__, (cls.__name__, name)
            assert first_line in cls.__doc__, (cls.__name__, name)


@pytest.mark.parametrize("cls", list(skinr.ESTIMATORS.values()), ids=lambda c: c.__name__)
def test_parameter_docs_state_rules_not_figures(cls):
    """A parameter's doc says what it does and links the page that holds the
    measurements (figures in docstrings drift from the benchmarks that made them)."""
    section = inspect.getdoc(cls).split("Parameters\n----------\n")[1].split("\n\nAttributes")[0]
    figures = re.findall(r"[^.]*\d(?:\.\d+)? dB[^.]*", section)
    assert figures == [], figures


def test_priors_page_runs(tmp_path, monkeypatch):
    """docs/priors.md's examples run as printed, at fewer steps: the prior of
    photos, the shipped prior, and a CT prior learned from sinograms alone."""
    pytest.importorskip("skimage")
    monkeypatch.chdir(tmp_path)
    page = (ROOT / "docs" / "priors.md").read_text()
    namespace = {}
    for code in re.findall(r"```python\n(.*?)```", page, re.S):
        for long, short in (
            ("meta_steps=100", "meta_steps=2"),
            ("inner_steps=50", "inner_steps=2"),
        ):
            code = code.replace(long, short)
        exec(
            compile(code.replace("max_iter=300", "max_iter=5"), "docs/priors.md", "exec"), namespace
        )
    assert namespace["reconstruction"].shape == (64, 64)
    assert namespace["model"].operator_ is not None and namespace["model"].n_iter_ == 5
