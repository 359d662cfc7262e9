#!/usr/bin/env bash
# Build Perch for Linux: the PyInstaller one-folder app, a tarball, an AppImage (when appimagetool is there) and
# a .deb. Run from anywhere on the oldest distribution the build should support (the bundle needs its glibc);
# the .deb needs dpkg-deb and is meant for the Debian release it was built on.
#
#   packaging/linux/build-linux.sh [--gpu]
#
# Writes to dist/:
#   perch/                                  the one-folder app: perch/perch is the `perch` command
#   perch-VERSION-linux-ARCH.tar.gz         that folder with the desktop file, icons and metainfo under share/
#   Perch-VERSION-ARCH.AppImage             only when appimagetool is found (see packaging/linux/README.md)
#   perch-dictation_VERSION_DEBARCH.deb     installs to /opt/perch, with /usr/bin/perch
# and keeps its work in build/linux/ (the virtual environment, the AppDir, the .deb tree).
#
# By default the bundle carries the CPU build of ONNX Runtime: the GPU wheel alone is over 300 MB unpacked and
# needs CUDA from the system. --gpu keeps the onnxruntime-gpu wheel that pyproject.toml selects.
#
# Environment:
#   PYTHON                the Python to build with (default python3; it needs its shared libpython)
#   APPIMAGETOOL          appimagetool to use (default: appimagetool or appimagetool-ARCH.AppImage on PATH)
#   PERCH_DEB_MAINTAINER  the .deb's Maintainer field
#   SOURCE_DATE_EPOCH     the date of the release entry in the metainfo (default: now)
set -euo pipefail
cd "$(dirname "$0")/../.."

gpu=false
for arg in "$@"; do
    case $arg in
        --gpu) gpu=true ;;
        *) echo "usage: $0 [--gpu]" >&2; exit 2 ;;
    esac
done
if [ "$(uname -s)" != Linux ]; then
    echo "build-linux.sh runs on Linux only" >&2
    exit 1
fi

app_id=io.github.perch.Perch
work=build/linux
venv=$work/venv
bundle=dist/perch
arch=$(uname -m)
started=$SECONDS
# Hard links where the file system allows them: the bundle is copied into three trees.
copy_tree() { cp -al "$1" "$2" 2>/dev/null || { rm -rf "$2"; cp -a "$1" "$2"; }; }
megabytes() { du -sm "$1" | cut -f1; }

# 1. A fresh environment with Perch, its dependencies and PyInstaller.
rm -rf "$venv"
"${PYTHON:-python3}" -m venv "$venv"
py=$venv/bin/python
"$py" -m pip install --quiet --upgrade pip
"$py" -m pip install --quiet . "pyinstaller>=6.10"
if ! $gpu && "$py" -m pip show --quiet onnxruntime-gpu 2>/dev/null; then
    # The same ONNX Runtime release, CPU build: both wheels install the `onnxruntime` package.
    ort=$("$py" -c "import importlib.metadata as m; print(m.version('onnxruntime-gpu'))")
    "$py" -m pip uninstall --quiet --yes onnxruntime-gpu
    "$py" -m pip install --quiet --force-reinstall --no-deps "onnxruntime==$ort"
fi
version=$("$py" -c "import importlib.metadata as m; print(m.version('perch-dictation'))")
echo "Perch $version: environment ready after $((SECONDS - started)) s"

# 2. The one-folder app.
rm -rf "$bundle"
"$py" -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath "$work/pyinstaller" \
    packaging/pyinstaller/perch.spec
"$bundle/perch" --version
unwanted=$(find "$bundle" \( -name torch -o -name tests -o -name pytest -o -name onnx_asr \) -print)
if [ -n "$unwanted" ]; then
    echo "the bundle holds what it must not: $unwanted" >&2
    exit 1
fi
echo "bundle: $bundle, $(megabytes "$bundle") MB, after $((SECONDS - started)) s"

# 3. Desktop integration: the desktop file, icons in the hicolor sizes, the metainfo with this release.
share=$work/share
rm -rf "$share"
mkdir -p "$share/applications" "$share/metainfo"
cp "packaging/linux/$app_id.desktop" "$share/applications/"
released=$(date -u -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}" +%F)
sed "s|^</component>|  <releases>\n    <release version=\"$version\" date=\"$released\"/>\n  </releases>\n</component>|" \
    "packaging/linux/$app_id.metainfo.xml" >"$share/metainfo/$app_id.metainfo.xml"
"$py" packaging/linux/build_icons.py "$share/icons" >/dev/null
if command -v desktop-file-validate >/dev/null; then desktop-file-validate "$share/applications/$app_id.desktop"; fi
if command -v appstreamcli >/dev/null; then appstreamcli validate --no-net "$share/metainfo/$app_id.metainfo.xml"; fi

# 4. The tarball: unpack anywhere and run perch-VERSION/perch (packaging/linux/README.md says how to install it).
name=perch-$version-linux-$arch
rm -rf "$work/tarball"
mkdir -p "$work/tarball"
copy_tree "$bundle" "$work/tarball/$name"
cp -a "$share" "$work/tarball/$name/share"
cp packaging/linux/README.md "$work/tarball/$name/README.md"
tar --sort=name --owner=0 --group=0 --numeric-owner -C "$work/tarball" -czf "dist/$name.tar.gz" "$name"
echo "tarball: dist/$name.tar.gz, $(megabytes "dist/$name.tar.gz") MB"

# 5. The AppDir, and the AppImage when appimagetool is at hand.
appdir=$work/Perch.AppDir
rm -rf "$appdir"
mkdir -p "$appdir/usr/lib"
copy_tree "$bundle" "$appdir/usr/lib/perch"
cp -a "$share" "$appdir/usr/share"
cp "packaging/linux/$app_id.desktop" "$appdir/"
cp "$share/icons/hicolor/256x256/apps/$app_id.png" "$appdir/"
ln -s "$app_id.png" "$appdir/.DirIcon"
cat >"$appdir/AppRun" <<'EOF'
#!/bin/sh
# Start Perch from its AppImage (or from the unpacked AppDir).
here=$(dirname "$(readlink -f "$0")")
exec "$here/usr/lib/perch/perch" "$@"
EOF
chmod 755 "$appdir/AppRun"
tool=${APPIMAGETOOL:-$(command -v appimagetool || command -v "appimagetool-$arch.AppImage" || true)}
if [ -n "$tool" ]; then
    ARCH=$arch "$tool" "$appdir" "dist/Perch-$version-$arch.AppImage"
    echo "AppImage: dist/Perch-$version-$arch.AppImage, $(megabytes "dist/Perch-$version-$arch.AppImage") MB"
else
    echo "no appimagetool: the AppDir is $appdir; packaging/linux/README.md says how to make the AppImage"
fi

# 6. The .deb: /opt/perch, /usr/bin/perch, and the desktop integration under /usr/share.
if command -v dpkg-deb >/dev/null; then
    deb_arch=$(dpkg --print-architecture)
    # Debian orders pre-releases before the release with a tilde: 1.0rc1 becomes 1.0~rc1.
    deb_version=$(sed -E 's/^([0-9.]+)[.-]?((a|b|rc|dev)[0-9]*)/\1~\2/' <<<"$version")
    root=$work/deb/root
    rm -rf "$work/deb"
    mkdir -p "$root/opt" "$root/usr/bin" "$root/usr/share/doc/perch-dictation" "$root/DEBIAN"
    copy_tree "$bundle" "$root/opt/perch"
    cp -a "$share/." "$root/usr/share/"
    ln -s /opt/perch/perch "$root/usr/bin/perch"
    cp LICENSE "$root/usr/share/doc/perch-dictation/copyright"
    depends=$("$py" packaging/linux/debian_depends.py "$bundle")
    cat >"$root/DEBIAN/control" <<EOF
Package: perch-dictation
Version: $deb_version
Architecture: $deb_arch
Maintainer: ${PERCH_DEB_MAINTAINER:-The Perch authors <perch@example.invalid>}
Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)
Depends: $depends
Suggests: wtype, wl-clipboard
Section: sound
Priority: optional
Homepage: https://github.com/perch/perch
Description: offline dictation: hold a key, speak, and the words are typed
 Perch lives in the system tray. Hold its hotkey, speak and let go: the
 words are recognised on this computer by NVIDIA's Parakeet-TDT model and
 typed into the window that has the focus. The perch command also
 transcribes audio files. The speech model is downloaded on first start.
EOF
    chmod -R u+rwX,go+rX,go-w "$root"
    deb=dist/perch-dictation_${deb_version}_$deb_arch.deb
    dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
    echo "deb: $deb, $(megabytes "$deb") MB; Depends: $depends"
else
    echo "no dpkg-deb: no .deb built"
fi
echo "built in $((SECONDS - started)) s"
