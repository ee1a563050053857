"""The Python dependencies are locked with hashes and free of known-vulnerable onnx releases."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "model" / "requirements.txt"


def _requirements(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (pinned version, sha256 hashes), from a pip-compile lock (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = {}
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert m, f"model/requirements.txt: {line!r} is not pinned with == (run bash scripts/model.sh lock)"
        out[m.group(1).lower().replace("_", "-")] = (m.group(2), re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return out


def test_every_requirement_is_pinned_with_a_hash():
    reqs = _requirements(LOCK.read_text())
    assert {"catboost", "onnx", "onnxruntime", "numpy", "pandas"} <= set(reqs)
    unhashed = [name for name, (_, hashes) in reqs.items() if not hashes]
    assert not unhashed, f"packages without --hash in model/requirements.txt: {unhashed}"
    # the lock names no extra index or local wheel folder
    assert not re.search(r"^\s*--(index-url|extra-index-url|find-links)", LOCK.read_text(), re.M)


def test_every_pip_install_requires_hashes():
    scripts = [ROOT / "scripts" / "setup.sh", *(ROOT / "pipeline").glob("*.sh"), *ROOT.glob("Dockerfile*")]
    installs = []
    for path in scripts:
        for line in path.read_text().replace("\\\n", " ").splitlines():
            if re.search(r"pip\S*\s+install\b", line) and not line.lstrip().startswith("#"):
                installs.append((path.name, line))
    assert installs, "scripts/setup.sh installs the Python packages"
    for name, line in installs:
        assert "--require-hashes" in line and "-r model/requirements.txt" in line, f"{name}: {line.strip()}"


def test_onnx_is_at_least_1_21_and_the_environment_matches_the_lock():
    reqs = _requirements(LOCK.read_text())
    onnx_version = tuple(int(x) for x in reqs["onnx"][0].split(".")[:2])
    assert onnx_version >= (1, 21), "onnx < 1.21 has known vulnerabilities (CVE-2026-34445 and others)"
    for name in ("onnx", "onnxruntime", "catboost", "numpy", "pandas", "protobuf"):
        assert metadata.version(name) == reqs[name][0], (
            f"{name}: installed {metadata.version(name)}, locked {reqs[name][0]}"
        )
