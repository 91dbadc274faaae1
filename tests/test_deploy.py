"""The deployment files (docs/deployment.md): the Dockerfile's two targets, compose.yaml, the
Helm chart and the Grafana dashboard. Read as text and YAML here, with no network; `helm
lint`/`helm template` run where helm is on the PATH and an image is built where a Docker
daemon answers, and the tests say when they skipped those."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "octavia"
HEALTH = "/api/v1/health"


def _stages(dockerfile: str) -> dict[str, list[str]]:
    """Each build stage's name and its instructions, its base stage's first (continuation
    lines joined, comments left out)."""
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in re.sub(r"\\\n\s*", " ", dockerfile).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            name = line.split()[-1] if " AS " in line.upper() else line.split()[1]
            current = stages.setdefault(name, [*stages.get(line.split()[1], [])])
        current.append(line)
    return stages


def _values_keys(text: str) -> dict[str, int]:
    """Every key path of values.yaml (a.b.c) with the line it is on; the file is block style
    with two-space indents (flow style only for empty {} and [])."""
    keys: dict[str, int] = {}
    stack: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines()):
        match = re.match(r"^( *)([A-Za-z_][A-Za-z0-9_]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        keys[".".join(name for _, name in stack)] = number
    return keys


def _rendered_templates() -> str:
    return "\n".join(p.read_text() for p in sorted((CHART / "templates").iterdir()))


def test_dockerfile_targets_run_as_non_root_with_volumes_and_a_health_check():
    stages = _stages((ROOT / "Dockerfile").read_text())
    assert {"offline", "quality"} <= stages.keys()
    uid = re.search(r"^ARG OCTAVIA_UID=(\d+)$", (ROOT / "Dockerfile").read_text(), re.M)
    assert uid and int(uid.group(1)) >= 10000
    for target in ("offline", "quality"):
        lines = stages[target]
        text = "\n".join(lines)
        users = [line.split()[1] for line in lines if line.startswith("USER ")]
        assert users and users[-1] == "${OCTAVIA_UID}:${OCTAVIA_UID}", target
        assert 'VOLUME ["/data", "/models"]' in lines, target
        assert "HF_HOME=/models/huggingface" in text, target
        assert "OCTAVIA_MODELS_CACHE_DIR=/models/octavia" in text, target
        assert "EXPOSE 8000" in lines, target
        assert any(line.startswith("HEALTHCHECK") and HEALTH in line for line in lines), target
        assert 'ENTRYPOINT ["octavia"]' in lines, target
        assert 'CMD ["serve", "--host", "0.0.0.0", "--data-dir", "/data"]' in lines, target
        for package in ("ffmpeg", "espeak-ng", "apertium-eng-spa", "fonts-dejavu-core"):
            assert package in text, (target, package)
    offline_build = "\n".join(stages["offline-build"])
    assert "download.pytorch.org/whl/cpu" in offline_build
    assert offline_build.index("torch==") < offline_build.index(".[offline,server]")
    assert ".[quality,offline,server]" in "\n".join(stages["quality-build"])
    for lines in stages.values():
        for line in lines:
            if line.startswith("FROM ") and line.split()[1] not in stages:
                base = line.split()[1]  # an image, not an earlier stage: pinned, not latest
                assert ":" in base and not base.endswith(":latest"), base
            if line.startswith("RUN") and "pip install" in line:
                assert "--no-cache-dir" in line, line
            if line.startswith("RUN") and "apt-get install" in line:
                assert "rm -rf /var/lib/apt/lists/*" in line, line


def test_compose_runs_redis_serve_and_a_gpu_worker_on_shared_volumes():
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"redis", "serve", "worker"} <= services.keys()
    serve, worker = services["serve"], services["worker"]
    assert serve["command"][0] == "serve"
    assert serve["command"][serve["command"].index("--broker") + 1] == "redis://redis:6379/0"
    assert worker["command"][:3] == ["worker", "--broker", "redis://redis:6379/0"]
    assert worker["command"][worker["command"].index("--gpu") + 1] == "0"
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    for service in (serve, worker):
        assert "octavia-data:/data" in service["volumes"]
        assert "octavia-models:/models" in service["volumes"]
        assert service["user"] == "10001:10001"
        assert service["build"]["target"] in ("offline", "quality")
        # One voice key for all, or each container's voices would be unreadable to the rest.
        assert service["environment"]["OCTAVIA_VOICE_KEY"].startswith("${OCTAVIA_VOICE_KEY:?")
    assert {"octavia-data", "octavia-models"} <= compose["volumes"].keys()
    assert worker["healthcheck"] == {"disable": True}  # no HTTP server in a worker
    # Published on loopback only: off this machine, a TLS proxy goes in front.
    assert serve["ports"] == ["127.0.0.1:8000:8000"]


def test_every_values_path_in_the_templates_exists_and_is_documented():
    text = (CHART / "values.yaml").read_text()
    lines = text.splitlines()
    keys = _values_keys(text)
    used = set(re.findall(r"\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", _rendered_templates()))
    assert used
    missing = sorted(path[1:] for path in used if path[1:] not in keys)
    assert not missing, f"used in the templates but not in values.yaml: {missing}"
    # Every key of values.yaml (not only the used ones) has a comment right above it, but
    # Kubernetes' own fields under a documented resources.requests or resources.limits.
    undocumented = [
        path
        for path, n in keys.items()
        if not lines[n - 1].lstrip().startswith("#")
        and not re.search(r"\.resources\.(requests|limits)\.[a-z]+$", path)
    ]
    assert not undocumented, f"values without a comment right above: {undocumented}"
    # And values.yaml parses to the same keys.
    parsed = yaml.safe_load(text)

    def paths(node: object, prefix: str = "") -> set[str]:
        if not isinstance(node, dict):
            return set()
        found = set()
        for key, value in node.items():
            found |= {prefix + key} | paths(value, prefix + key + ".")
        return found

    assert paths(parsed) == set(keys)


def test_chart_facts_gpu_probes_scraping_non_root_and_shared_volumes():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "octavia"
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["worker"]["gpus"] == 1
    assert values["persistence"]["data"]["accessMode"] == "ReadWriteMany"
    assert values["runAsUser"] >= 10000 and values["redis"]["runAsUser"] >= 10000
    assert values["metrics"]["enabled"] is True
    templates = {p.name: p.read_text() for p in (CHART / "templates").iterdir()}
    assert {"_helpers.tpl", "NOTES.txt", "serve.yaml", "worker.yaml", "redis.yaml"} <= set(
        templates
    )
    worker, serve = templates["worker.yaml"], templates["serve.yaml"]
    assert "nvidia.com/gpu: {{ .Values.worker.gpus }}" in worker
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        assert re.search(probe + r":\s+httpGet:\s+path: " + re.escape(HEALTH), serve), probe
    for annotation in (
        'prometheus.io/scrape: "true"',
        'prometheus.io/port: "8000"',
        "prometheus.io/path: /metrics",
    ):
        assert annotation in serve
    # One serve per data dir (it locks it): never two pods at once.
    assert "replicas: 1" in serve and "type: Recreate" in serve
    helpers = templates["_helpers.tpl"]
    for setting in ("runAsNonRoot: true", "allowPrivilegeEscalation: false", "- ALL"):
        assert setting in helpers
    assert 'claimName: {{ include "octavia.dataClaim" . }}' in helpers
    for name in ("serve.yaml", "worker.yaml"):
        assert 'include "octavia.podSecurityContext"' in templates[name]
        assert 'include "octavia.volumes"' in templates[name]
    # The broker URL comes from a Secret, never the manifest; no API key is in any Secret.
    assert "secretKeyRef" in helpers
    assert "- name: OCTAVIA_VOICE_KEY" in helpers  # one voice key for serve and the workers
    assert "octavia serve keys create" in templates["NOTES.txt"]
    # Each checkov skip says why.
    for text in templates.values():
        for skip in re.findall(r"checkov\.io/skip\d+: (\S+?)=(.*)", text):
            assert re.fullmatch(r"CKV2?_K8S_\d+", skip[0]) and len(skip[1]) > 20, skip


def test_grafana_dashboard_queries_series_serve_exports(tmp_path):
    """Every metric the dashboard queries is in what /metrics renders."""
    from octavia_cli.server.metrics import Metrics
    from octavia_cli.server.store import Store

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "octavia.json").read_text())
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    titles = " | ".join(p["title"] for p in dashboard["panels"])
    for wanted in ("Jobs by state", "Queue depth", "Stage time p50", "p90", "p99", "Workers"):
        assert wanted in titles
    assert any(
        "histogram_quantile(0.99" in e and "octavia_stage_seconds_bucket" in e for e in exprs
    )

    class Cleaner:
        deleted = {"uploads": 0, "jobs": 0}  # noqa: RUF012 (a stand-in)

    metrics = Metrics(Store(tmp_path / "octavia.db"), lambda: 1, Cleaner())  # type: ignore[arg-type]
    metrics.on_event("j", {"stage": "transcribe", "status": "started"})
    metrics.on_event("j", {"stage": "transcribe", "status": "done"})
    text = metrics.render().decode()  # families with no sample yet (no jobs): their TYPE line
    exported = set(re.findall(r"^(?:# TYPE )?(octavia_\w+)", text, re.M))
    queried = {name for e in exprs for name in re.findall(r"\b(octavia_\w+)", e)}
    assert queried and queried <= exported, queried - exported


def test_helm_lint_and_template():
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not on the PATH: `helm lint` and `helm template` not run")
    subprocess.run([helm, "lint", "--strict", str(CHART)], check=True, capture_output=True)
    rendered = subprocess.run(
        [helm, "template", "octavia", str(CHART), "--namespace", "octavia"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    objects = [d for d in yaml.safe_load_all(rendered) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in objects}
    for kind, name in (
        ("Deployment", "octavia-serve"),
        ("Deployment", "octavia-worker"),
        ("Deployment", "octavia-redis"),
        ("Service", "octavia-serve"),
        ("Service", "octavia-redis"),
        ("PersistentVolumeClaim", "octavia-data"),
        ("PersistentVolumeClaim", "octavia-models"),
        ("Secret", "octavia-broker"),
    ):
        assert (kind, name) in kinds
    worker = next(
        d for d in objects if (d["kind"], d["metadata"]["name"]) == ("Deployment", "octavia-worker")
    )
    container = worker["spec"]["template"]["spec"]["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["args"][-2:] == ["--gpu", "0"]
    claim = next(
        d
        for d in objects
        if d["kind"] == "PersistentVolumeClaim" and d["metadata"]["name"] == "octavia-data"
    )
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    # An external Redis: no Redis objects, the URL from the given Secret.
    external = subprocess.run(
        [helm, "template", "octavia", str(CHART), "--set", "redis.enabled=false",
         "--set", "redis.existingSecret=broker"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert "octavia-redis" not in external and "name: broker" in external


def _docker_answers() -> bool:
    docker = shutil.which("docker")
    if docker is None:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.mark.slow
def test_offline_image_builds():
    if not _docker_answers():
        pytest.skip("no Docker daemon answers `docker info`: the offline image was not built")
    subprocess.run(
        ["docker", "build", "--target", "offline", "-t", "octavia:offline-test", str(ROOT)],
        check=True,
        timeout=3600,
    )
    user = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Config.User}}", "octavia:offline-test"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    assert user == "10001:10001"
