"""One catalog of every model Octavia's engines use, and what a run needs of it.

Each entry says where the model comes from (the Hugging Face hub, torchaudio's download
server, or a Python package), its revision, approximate size, licence, whether it is gated,
and which engines and languages use it. ``octavia models`` lists, pulls and removes them;
:func:`required_models` tells a run, before any stage, which models it needs, so a missing
one is reported at once with the command that fetches it.

Hub models are cached in the standard Hugging Face cache (``HF_HOME``/``HF_HUB_CACHE``),
torchaudio's in torch's hub cache (``TORCH_HOME``), bundled ones in Octavia's own cache.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from octavia_cli.config import Settings
from octavia_cli.devices import resolve_device
from octavia_cli.errors import MissingModelError
from octavia_cli.models import translation as mt_catalog
from octavia_cli.models.bundled import (
    BUNDLED_MODELS,
    OFFLINE_EXTRA_HINT,
    bundled_model_path,
    cache_root,
    hub_cache_dir,
)
from octavia_cli.models.whisper import WHISPER_REVISIONS, resolve_model_name

HUB = "hub"
TORCHAUDIO = "torchaudio"
BUNDLED = "bundled"
COMMIT = re.compile(r"^[0-9a-f]{40}$")

# faster-whisper's model names and the CTranslate2 conversions they download (sizes in MB).
WHISPER_MODELS: dict[str, tuple[str, int]] = {
    "tiny": ("Systran/faster-whisper-tiny", 75),
    "tiny.en": ("Systran/faster-whisper-tiny.en", 75),
    "base": ("Systran/faster-whisper-base", 145),
    "base.en": ("Systran/faster-whisper-base.en", 145),
    "small": ("Systran/faster-whisper-small", 484),
    "small.en": ("Systran/faster-whisper-small.en", 484),
    "medium": ("Systran/faster-whisper-medium", 1530),
    "medium.en": ("Systran/faster-whisper-medium.en", 1530),
    "large-v2": ("Systran/faster-whisper-large-v2", 3090),
    "large-v3": ("Systran/faster-whisper-large-v3", 3090),
    "distil-large-v3": ("Systran/faster-distil-whisper-large-v3", 1510),
    "turbo": ("mobiuslabsgmbh/faster-whisper-large-v3-turbo", 1620),
}
BUNDLED_SIZES_MB = {"whisper-base": 145}
# Commits we have seen pinned in independent public projects (no hub access here to read
# more); the rest follow ``main`` and `octavia models pull` prints the commit it fetched.
# whisperx's default alignment models: torchaudio bundles (file name, MB) for five languages.
TORCHAUDIO_ALIGN = {
    "en": ("WAV2VEC2_ASR_BASE_960H", "wav2vec2_fairseq_base_ls960_asr_ls960.pth", 360),
    "fr": ("VOXPOPULI_ASR_BASE_10K_FR", "wav2vec2_voxpopuli_base_10k_asr_fr.pt", 360),
    "de": ("VOXPOPULI_ASR_BASE_10K_DE", "wav2vec2_voxpopuli_base_10k_asr_de.pt", 360),
    "es": ("VOXPOPULI_ASR_BASE_10K_ES", "wav2vec2_voxpopuli_base_10k_asr_es.pt", 360),
    "it": ("VOXPOPULI_ASR_BASE_10K_IT", "wav2vec2_voxpopuli_base_10k_asr_it.pt", 360),
}


# demucs 4.1 takes its pretrained models from the hub (one safetensors file per model of
# the bag, plus the bag's yaml).
DEMUCS_MODELS = {
    "htdemucs": ("adefossez/HTDemucs", 84),
    "htdemucs_ft": ("adefossez/HTDemucs-ft", 336),
}
PYANNOTE_PIPELINE = "pyannote/speaker-diarization-community-1"
# coqui/XTTS-v2 at its last commit (December 2023), the one independent public projects pin.
XTTS_REPO, XTTS_REVISION = "coqui/XTTS-v2", "6c2b0d75eae4b7047358e3b6bd9325f857d43f77"


@dataclass(frozen=True)
class HubFiles:
    """A hub repository at a pinned commit, and the files of it a loader reads."""

    repo: str
    revision: str
    files: tuple[str, ...]
    size_mb: int
    license: str


# Lip-sync (MuseTalk 1.5) and its two companions, at the commits an independent public
# project pins (no hub access here to read newer ones). The UNet's config and weights; the
# VAE's config and safetensors; Whisper-tiny's config, feature extractor and safetensors.
LIPSYNC_MODELS = {
    "musetalk": HubFiles("TMElyralab/MuseTalk", "3ef28bc5cff08c90ad8178a25f1b570cd800170f",
                         ("musetalkV15/musetalk.json", "musetalkV15/unet.pth"), 3400, "MIT"),
    "sd-vae-ft-mse": HubFiles("stabilityai/sd-vae-ft-mse",
                              "31f26fdeee1355a5c34592e401dd41e45d25a493",
                              ("config.json", "diffusion_pytorch_model.safetensors"), 335, "MIT"),
    "whisper-tiny": HubFiles("openai/whisper-tiny", "169d4a4341b33bc18d8881c4b69c2e104e1cc0af",
                             ("config.json", "preprocessor_config.json", "model.safetensors"),
                             151, "Apache-2.0"),
}  # fmt: skip
# The catalog's names of those (whisper-tiny is already faster-whisper's CTranslate2 one).
LIPSYNC_NAMES = {"musetalk": "musetalk", "sd-vae-ft-mse": "musetalk-vae",
                 "whisper-tiny": "musetalk-whisper"}  # fmt: skip
CPML_URL = "https://coqui.ai/cpml"  # the Coqui Public Model Licence, as coqui-tts cites it
CC_BY_NC_URL = "https://creativecommons.org/licenses/by-nc/4.0/"  # NLLB-200's weights
# The setting by which a user accepts each kind's non-commercial licence.
ACCEPT_SETTINGS = {"tts": "tts.accept_license", "mt": "mt.accept_license"}

# -- which files of a hub repository a family's loader reads ---------------------------------
# ``octavia models pull`` (and the XTTS engine's own download) fetch only these: a whole
# repository also holds copies for other frameworks (TensorFlow, Flax, Rust, ONNX), samples,
# training files and cards. Patterns as huggingface_hub's ``allow_patterns`` (fnmatch: ``*``
# crosses ``/``).
# faster-whisper's own list (faster_whisper.utils.download_model): the CTranslate2 files.
WHISPER_FILES = ["config.json", "preprocessor_config.json", "model.bin", "tokenizer.json",
                 "vocabulary.*"]  # fmt: skip
# coqui-tts 0.28's Xtts.load_checkpoint: the weights (mel_stats is a buffer in them), the BPE
# vocabulary and the speakers; the engine reads config.json. dvae.pth and mel_stats.pth are
# for training, samples/ are demos (coqui-tts itself skips samples/ and dvae.pth).
XTTS_FILES = ["config.json", "model.pth", "vocab.json", "speakers_xtts.pth"]
# pyannote.audio 4: config.yaml, then what its $model/ entries name in subfolders (each
# model's pytorch_model.bin, the PLDA's .npz; a calibration.safetensors where one is named);
# not the cards or the gif.
PYANNOTE_FILES = ["*.yaml", "*.bin", "*.npz", "*.safetensors"]
# transformers (translation and whisperx's wav2vec2 alignment models): the configs and
# tokenizer files, sentencepiece models, and one copy of the weights (see weight_files).
TRANSFORMERS_FILES = ["*.json", "*.spm", "*.model"]
# An alignment model's n-gram language model (pyctcdecode's); whisperx's processor reads none.
ALIGN_IGNORED = ["language_model/*"]


@dataclass(frozen=True)
class ModelEntry:
    name: str  # what `octavia models pull NAME` takes
    kind: str  # asr, align, mt, tts
    source: str  # hub, torchaudio or bundled
    location: str  # hub id, torchaudio bundle name, or bundled model name
    revision: str  # a pinned commit, or "main"
    size_mb: int
    license: str
    gated: bool
    engines: tuple[str, ...]
    languages: str  # "all", "en", "en→es", ...
    filename: str = ""  # torchaudio: the checkpoint file
    terms: str = ""  # the licence a user accepts before it is fetched (its address)

    @property
    def pinned(self) -> bool:
        return bool(COMMIT.match(self.revision))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"pinned": self.pinned}


def all_models() -> list[ModelEntry]:
    entries: list[ModelEntry] = []
    for name, model in BUNDLED_MODELS.items():
        entries.append(
            ModelEntry(
                f"bundled:{name}", model.kind, BUNDLED, name, "package",
                BUNDLED_SIZES_MB.get(name, 0),
                model.license, False, ("faster-whisper", "whisperx"), "all",
            )
        )  # fmt: skip
    for name, (hub_id, size) in WHISPER_MODELS.items():
        entries.append(
            ModelEntry(
                f"whisper-{name}", "asr", HUB, hub_id, WHISPER_REVISIONS.get(name, "main"), size,
                "MIT", False,
                ("faster-whisper", "whisperx"), "en" if name.endswith(".en") else "all",
            )
        )  # fmt: skip
    for language, (bundle, filename, size) in TORCHAUDIO_ALIGN.items():
        entries.append(
            ModelEntry(
                f"align-{language}", "align", TORCHAUDIO, bundle, "torchaudio", size,
                "MIT (fairseq)" if language == "en" else "CC0 data, MIT code",
                False, ("whisperx",), language, filename,
            )
        )  # fmt: skip
    for language, hub_id in _hf_align_models().items():
        entries.append(
            ModelEntry(
                f"align-{language}", "align", HUB, hub_id, "main", 1260, "see the model card",
                False, ("whisperx",), language,
            )
        )  # fmt: skip
    entries.append(
        ModelEntry(
            "xtts-v2", "tts", HUB, XTTS_REPO, XTTS_REVISION, 1870,
            "CPML (non-commercial)", False, ("xtts",), "17 languages", terms=CPML_URL,
        )
    )  # fmt: skip
    for name, (hub_id, size) in DEMUCS_MODELS.items():
        entries.append(
            ModelEntry(
                name, "separation", HUB, hub_id, "main", size, "MIT", False, ("demucs",), "all"
            )
        )  # fmt: skip
    entries.append(
        ModelEntry(
            "pyannote-community-1", "diarization", HUB, PYANNOTE_PIPELINE, "main", 33,
            "CC-BY-4.0 (gated: accept the conditions on its hub page)", True, ("pyannote",),
            "all",
        )
    )  # fmt: skip
    for key, files in LIPSYNC_MODELS.items():
        entries.append(
            ModelEntry(
                LIPSYNC_NAMES[key], "lipsync", HUB, files.repo, files.revision, files.size_mb,
                files.license, False, ("musetalk",), "all",
            )
        )  # fmt: skip
    for mt in mt_catalog.catalog():
        languages = (
            mt.name.removeprefix("opus-mt-").replace("-", "→") if mt.family == "marian" else "all"
        )
        entries.append(
            ModelEntry(
                mt.name, "mt", HUB, mt.hub_id, mt.revision, mt.size_mb,
                mt.license, False, ("transformers",), languages,
                terms=CC_BY_NC_URL if "NC" in mt.license else "",
            )
        )  # fmt: skip
    return entries


def _hf_align_models() -> dict[str, str]:
    """whisperx's Hugging Face alignment models per language (without importing whisperx,
    which loads torch): the table is read from its source when it is installed."""
    try:
        from importlib.util import find_spec

        spec = find_spec("whisperx")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return {}
    source = Path(next(iter(spec.submodule_search_locations))) / "alignment.py"
    text = source.read_text(encoding="utf-8")
    start = text.find("DEFAULT_ALIGN_MODELS_HF")
    table = text[start : text.find("}", start)]
    return dict(re.findall(r'"([a-z]{2})":\s*["\']([^"\']+)["\']', table))


def find_model(name: str) -> ModelEntry | None:
    for entry in all_models():
        if name in (entry.name, entry.location):
            return entry
    return None


# -- where a model is on disk ----------------------------------------------------------------


def hub_repo_dir(hub_id: str) -> Path:
    return hub_cache_dir() / f"models--{hub_id.replace('/', '--')}"


def torch_hub_dir() -> Path:
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch"
    )
    return Path(home) / "hub"


def installed_path(entry: ModelEntry, settings: Settings) -> Path | None:
    """The local folder or file of ``entry``, or None if it is not on this machine."""
    if entry.source == HUB:
        snapshot = _snapshot(entry)
        return snapshot
    if entry.source == TORCHAUDIO:
        path = torch_hub_dir() / "checkpoints" / entry.filename
        return path if path.exists() else None
    # Present when the packages that carry it are installed (assembled on first use).
    from importlib.util import find_spec

    model = BUNDLED_MODELS[entry.location]
    if any(find_spec(part.package) is None for part in model.parts):
        return None
    assembled = cache_root(settings.models.cache_dir) / "bundled" / entry.location
    if assembled.is_dir():
        return assembled
    spec = find_spec(model.parts[0].package)
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


def _snapshot(entry: ModelEntry) -> Path | None:
    repo = hub_repo_dir(entry.location)
    snapshots = repo / "snapshots"
    if not snapshots.is_dir():
        return None
    if entry.pinned:
        pinned = snapshots / entry.revision
        return pinned if pinned.is_dir() else None
    ref = repo / "refs" / entry.revision
    if ref.exists():
        commit = ref.read_text().strip()
        if (snapshots / commit).is_dir():
            return snapshots / commit
    found = sorted(p for p in snapshots.iterdir() if p.is_dir())
    return found[-1] if found else None


def size_on_disk(path: Path) -> int:
    """Bytes of ``path`` (a snapshot's files are links into ``blobs``: count their targets)."""
    if path.is_file():
        return path.stat().st_size
    total = 0
    for item in path.rglob("*"):
        if item.is_file():
            total += item.resolve().stat().st_size
    return total


# -- what a run needs ------------------------------------------------------------------------


def required_models(
    settings: Settings, source_language: str | None, targets: tuple[str, ...] = ()
) -> list[ModelEntry]:
    """The catalog models a run with ``settings`` needs (as far as the languages are known:
    the alignment model and the translation models need the spoken language)."""

    needed: list[ModelEntry] = []
    model = settings.asr.model
    if model.startswith("bundled:"):
        entry = find_model(model)
    else:
        name = resolve_model_name(model, resolve_device(settings.general.device))
        entry = find_model(f"whisper-{name}") or find_model(name)
    if entry is not None:
        needed.append(entry)
    if settings.asr.engine == "whisperx" and source_language and not settings.asr.align_model:
        entry = find_model(f"align-{source_language}")
        if entry is not None:
            needed.append(entry)
    if settings.mt.engine == "transformers" and source_language:
        for target in targets:
            chosen = mt_catalog.choose(settings.mt.model, source_language, target)
            entry = find_model(chosen.name) if chosen else None
            if entry is not None:
                needed.append(entry)
    elif settings.mt.engine == "transformers" and settings.mt.model != "auto":
        entry = find_model(settings.mt.model)  # named: needed whatever the languages
        if entry is not None:
            needed.append(entry)
    if settings.separation.engine == "demucs":
        entry = find_model(settings.separation.model)
        if entry is not None:
            needed.append(entry)
    diarization = settings.diarization
    if diarization.engine == "pyannote" and diarization.speakers != 1:
        entry = find_model(diarization.model)
        if entry is not None:
            needed.append(entry)
    if settings.tts.engine == "xtts" and not settings.tts.model:
        entry = find_model("xtts-v2")
        if entry is not None:
            needed.append(entry)
    if settings.lipsync.enabled:
        for key in LIPSYNC_MODELS:
            configured = getattr(settings.lipsync, _LIPSYNC_SETTING[key])
            entry = find_model(LIPSYNC_NAMES[key])
            if not configured and entry is not None:
                needed.append(entry)
    if settings.qa.mode != "off" and settings.qa.model not in ("auto", model):
        heard = settings.qa.model
        if not heard.startswith("bundled:"):
            heard = "whisper-" + resolve_model_name(heard, resolve_device(settings.general.device))
        entry = find_model(heard)
        if entry is not None:
            needed.append(entry)
    return list(dict.fromkeys(needed))


_LIPSYNC_SETTING = {"musetalk": "unet", "sd-vae-ft-mse": "vae", "whisper-tiny": "whisper"}


def licences(
    settings: Settings, source_language: str | None, targets: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """The non-commercial licences of the models a run needs: each model, its licence, its
    terms' address, the setting that accepts it and whether it is accepted."""
    found = []
    for entry in required_models(settings, source_language, targets):
        if not entry.terms:
            continue
        setting = ACCEPT_SETTINGS[entry.kind]
        found.append({"model": entry.name, "license": entry.license, "terms": entry.terms,
                      "setting": setting, "accepted": bool(settings.get(setting))})  # fmt: skip
    return found


def check_licences(
    settings: Settings, source_language: str | None, targets: tuple[str, ...] = ()
) -> None:
    """Raise unless every non-commercial licence of the run's models is accepted."""
    from octavia_cli.errors import ConfigError

    pending = [x for x in licences(settings, source_language, targets) if not x["accepted"]]
    if not pending:
        return
    listed = "; ".join(f"{x['model']} ({x['license']}, {x['terms']})" for x in pending)
    commands = " && ".join(
        f"octavia config set {setting} true"
        for setting in dict.fromkeys(x["setting"] for x in pending)
    )
    raise ConfigError(
        f"This run uses models under non-commercial licences not accepted yet: {listed}.",
        f"Read them; to accept: {commands}",
    )


def preset_models(settings: Settings, languages: tuple[str, ...]) -> list[ModelEntry]:
    """The models a preset would use for runs among ``languages`` (every pair)."""
    needed: list[ModelEntry] = []
    for source in languages or (None,):
        targets = tuple(t for t in languages if t != source)
        needed += required_models(settings, source, targets)
    return list(dict.fromkeys(needed))


# -- fetching ------------------------------------------------------------------------------


def weight_files(repo_files: list[str]) -> list[str]:
    """The one copy of a transformers model's weights its loader reads: safetensors where
    the repository has them (transformers prefers them), else ``pytorch_model.bin``
    (or its shards)."""
    if any(name.endswith(".safetensors") for name in repo_files):
        return ["*.safetensors"]
    return ["pytorch_model*.bin"]


def needs_file_list(entry: ModelEntry) -> bool:
    """Whether :func:`download_patterns` needs the repository's file list (which copy of
    the weights to take)."""
    return entry.source == HUB and entry.kind in ("mt", "align")


def download_patterns(
    entry: ModelEntry, repo_files: list[str] | None = None
) -> tuple[list[str] | None, list[str] | None]:
    """``(allow_patterns, ignore_patterns)`` for fetching ``entry``'s hub repository: only
    what its family's loader reads. ``repo_files``: the repository's files, for the
    families where :func:`needs_file_list`."""
    if entry.kind == "asr":
        return list(WHISPER_FILES), None
    if entry.kind == "tts":
        return list(XTTS_FILES), None
    if entry.kind == "separation":  # demucs 4.1's export: the bag's yaml, a file per model
        return [f"{entry.name}.yaml", "*.safetensors"], None
    if entry.kind == "diarization":
        return list(PYANNOTE_FILES), None
    if entry.kind == "lipsync":
        return [f for m in LIPSYNC_MODELS.values() if m.repo == entry.location
                for f in m.files], None  # fmt: skip
    if entry.kind in ("mt", "align"):
        allow = [*TRANSFORMERS_FILES, *weight_files(repo_files or [])]
        return allow, list(ALIGN_IGNORED) if entry.kind == "align" else None
    return None, None


def _repo_files(entry: ModelEntry, token: str | None) -> list[str]:
    from huggingface_hub import HfApi

    return HfApi().list_repo_files(entry.location, revision=entry.revision, token=token)


def pull(entry: ModelEntry, settings: Settings, console: Any) -> Path:
    """Download ``entry`` into its cache (with progress on stderr) and return its path; the
    revision downloaded is checked against a pinned one.

    Raises:
        MissingModelError: downloads are off, or the download failed.
    """

    present = installed_path(entry, settings)
    if present is not None and entry.source != BUNDLED:
        console.print(f"{entry.name}: already in {present}")
        return present
    if entry.source == BUNDLED:
        if present is None:
            raise MissingModelError(
                f"{entry.name} ships in Python packages that are not installed.",
                OFFLINE_EXTRA_HINT,
            )
        return bundled_model_path(entry.location, settings.models.cache_dir)
    if settings.offline:  # checked before any network library is imported
        raise MissingModelError(
            f"Cannot fetch {entry.name}: downloads are off (--offline, HF_HUB_OFFLINE=1 or "
            "models.offline).",
            "Run the pull on a machine with network access, then copy the cache over.",
        )
    console.print(
        f"fetching {entry.name} ({entry.location}, revision {entry.revision}), about "
        f"{entry.size_mb} MB, licence {entry.license}"
    )
    try:
        if entry.source == TORCHAUDIO:
            import torchaudio

            getattr(torchaudio.pipelines, entry.location).get_model()
            path = installed_path(entry, settings)
            assert path is not None
            return path
        from huggingface_hub import snapshot_download

        token = None
        if entry.gated:
            token = settings.diarization.hf_token or os.environ.get("HF_TOKEN") or None
        files = _repo_files(entry, token) if needs_file_list(entry) else None
        allow, ignore = download_patterns(entry, files)
        path = Path(
            snapshot_download(
                entry.location,
                revision=entry.revision,
                cache_dir=str(hub_cache_dir()),
                token=token,
                allow_patterns=allow,
                ignore_patterns=ignore,
            )
        )
    except Exception as exc:
        hint = "Check the network and try again."
        if entry.gated:
            hint = (
                f"It is gated: accept its conditions at https://hf.co/{entry.location} and set "
                "a token with: octavia config set diarization.hf_token TOKEN"
            )
        raise MissingModelError(f"Could not fetch {entry.name}: {exc}.", hint) from None
    if entry.pinned and path.name != entry.revision:
        raise MissingModelError(
            f"{entry.name} came at revision {path.name}, not the pinned {entry.revision}.",
            "Report this: the catalog's pin may be stale.",
        )
    console.print(f"{entry.name}: revision {path.name} in {path}")
    return path


def hub_snapshot(
    repo: str, revision: str | None, files: list[str] | None, *, offline: bool, what: str,
    hint: str,
) -> Path:  # fmt: skip
    """An engine's model folder: ``repo`` at ``revision`` in the hub cache (``files`` of it),
    fetched first unless ``offline``.

    Raises:
        MissingModelError: not cached and not fetched; ``what`` names it, ``hint`` says how.
    """
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(
            repo, revision=revision, allow_patterns=files, cache_dir=str(hub_cache_dir()),
            local_files_only=offline,
        ))  # fmt: skip
    except Exception as exc:
        raise MissingModelError(f"{what} is not available ({exc}).", hint) from None


def hub_reachable(timeout_s: float = 3.0) -> bool:
    """Whether the model hub answers a TCP connection (a quick check before a long run)."""
    import socket
    from urllib.parse import urlparse

    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((endpoint.hostname or "", endpoint.port or 443), timeout_s):
            return True
    except OSError:
        return False


def preflight(
    settings: Settings, source_language: str | None, targets: tuple[str, ...] = ()
) -> list[ModelEntry]:
    """Fail before any stage if a needed model is missing and cannot be fetched, naming
    every one and the command that fetches them; return those that will be downloaded."""
    import logging

    missing = [
        e for e in required_models(settings, source_language, targets)
        if installed_path(e, settings) is None
    ]  # fmt: skip
    if not missing:
        return []
    listed = ", ".join(f"{e.name} ({e.size_mb} MB, {e.license})" for e in missing)
    bundled = [e for e in missing if e.source == BUNDLED]
    if bundled:
        raise MissingModelError(f"Models this run needs are not installed: {listed}.",
                                OFFLINE_EXTRA_HINT)  # fmt: skip
    names = " ".join(e.name for e in missing)
    if settings.offline:
        why = "downloads are off (offline)"
    elif not hub_reachable():
        why = "the model hub cannot be reached"
    else:
        logging.getLogger(__name__).info(
            "will download before use: %s (about %d MB in all)",
            listed,
            sum(e.size_mb for e in missing),
        )
        return missing
    raise MissingModelError(
        f"{len(missing)} model(s) this run needs are not on this machine and {why}: {listed}.",
        f"Fetch them where there is network: octavia models pull {names}",
    )
