"""Writes a one-layer OCI image archive holding a single static binary.

The real node cannot pull from a registry, so its pod infrastructure ("pause")
image is made here from a binary built locally and imported into containerd
with `ctr images import`.

Usage: python3 oci-image.py BINARY IMAGE_NAME OUTPUT_TAR
  e.g. python3 oci-image.py bin/fnol-pause fnol.local/pause:1.0 pause.oci.tar
The binary lands at /<basename> and is the image's entrypoint; the image runs
as user 65535 (non-root).
"""

import hashlib
import io
import json
import os
import sys
import tarfile


def blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def layer_tar(binary: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tar.gettarinfo(binary, arcname=os.path.basename(binary))
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o755
        info.mtime = 0
        with open(binary, "rb") as f:
            tar.addfile(info, f)
    return buf.getvalue()


def main() -> None:
    if len(sys.argv) != 4:
        sys.exit("usage: oci-image.py BINARY IMAGE_NAME OUTPUT_TAR")
    binary, name, out = sys.argv[1:]
    if not os.path.isfile(binary):
        sys.exit(f"error: {binary} is not a file; build it first")

    layer_digest, layer = blob(layer_tar(binary))
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/" + os.path.basename(binary)],
            "User": "65535:65535",
        },
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "cluster/node/oci-image.py"}],
    }
    config_digest, config_data = blob(json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": len(config_data),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": layer_digest,
                "size": len(layer),
            }
        ],
    }
    manifest_digest, manifest_data = blob(json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": len(manifest_data),
                "annotations": {
                    "io.containerd.image.name": name,
                    "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1],
                },
            }
        ],
    }

    with tarfile.open(out, mode="w") as tar:

        def add(path: str, data: bytes) -> None:
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))

        add("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
        add("index.json", json.dumps(index).encode())
        for digest, data in (
            (layer_digest, layer),
            (config_digest, config_data),
            (manifest_digest, manifest_data),
        ):
            add("blobs/sha256/" + digest.split(":", 1)[1], data)
    print(f"{out}: {name} ({manifest_digest})")


if __name__ == "__main__":
    main()
