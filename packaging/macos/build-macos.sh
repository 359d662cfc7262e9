#!/usr/bin/env bash
# Build Perch.app on macOS: a virtual environment, PyInstaller with the common spec, a hardened-runtime signature,
# notarisation and a stapled ticket; then a zip (and with --dmg a disk image) in dist/.
#
#   PERCH_SIGN_IDENTITY   the signing identity, e.g. "Developer ID Application: Jane Doe (AB12CD34EF)"; unset: an
#                         ad-hoc signature, which runs on this Mac only, and no notarisation
#   PERCH_NOTARY_PROFILE  a notarytool keychain profile (xcrun notarytool store-credentials NAME ...); unset: the
#                         app is signed but not notarised
#   PYTHON                the Python to build with (default python3; the python.org installer's is the tested kind)
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(uname -s)" != Darwin ]; then
    echo "build-macos.sh runs on macOS only" >&2
    exit 1
fi
make_dmg=false
for arg in "$@"; do
    case $arg in
        --dmg) make_dmg=true ;;
        *) echo "usage: $0 [--dmg]" >&2; exit 2 ;;
    esac
done

venv=build/venv-macos
app=dist/Perch.app
entitlements=packaging/macos/entitlements.plist
identity=${PERCH_SIGN_IDENTITY:--}
profile=${PERCH_NOTARY_PROFILE:-}
if [ "$identity" = - ]; then
    # An ad-hoc signature carries no secure timestamp and no team for the hardened runtime's library validation.
    options=(--timestamp=none)
    profile=""
else
    options=(--timestamp --options runtime)
fi

# 1. A clean environment with Perch and PyInstaller.
[ -x "$venv/bin/python" ] || "${PYTHON:-python3}" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet . "pyinstaller>=6.10"
version=$("$venv/bin/python" -c "import importlib.metadata as m; print(m.version('perch-dictation'))")
name="Perch-$version-macos-$(uname -m)"

# 2. The app bundle.
rm -rf "$app" dist/perch
"$venv/bin/python" -m PyInstaller --noconfirm --clean --distpath dist --workpath build/pyinstaller-macos \
    packaging/pyinstaller/perch.spec
plutil -lint "$app/Contents/Info.plist"
"$app/Contents/MacOS/perch" --help >/dev/null

# 3. Sign from the inside out: every Mach-O file, then each framework, then the app with its entitlements.
sign() { codesign --force "${options[@]}" --sign "$identity" "$@"; }
deepest_first() { awk -F/ '{ print NF "\t" $0 }' | sort -rn | cut -f2-; }
find "$app/Contents" -type f ! -path "$app/Contents/MacOS/*" | deepest_first | while IFS= read -r file; do
    if file -b "$file" | grep -q "Mach-O"; then sign "$file"; fi
done
find "$app/Contents" -type d -name "*.framework" | deepest_first | while IFS= read -r framework; do
    sign "$framework"
done
sign --entitlements "$entitlements" "$app"
codesign --verify --deep --strict --verbose=2 "$app"

# 4. Notarise and staple: Gatekeeper then opens the app without asking, even offline.
notarise() {
    local result id status
    result=$(xcrun notarytool submit "$1" --keychain-profile "$profile" --wait --output-format json)
    read -r id status < <("$venv/bin/python" -c \
        'import json, sys; answer = json.load(sys.stdin); print(answer["id"], answer["status"])' <<<"$result")
    if [ "$status" != Accepted ]; then
        xcrun notarytool log "$id" --keychain-profile "$profile" >&2 || true
        echo "notarisation of $1 ended with status $status" >&2
        exit 1
    fi
}
if [ -n "$profile" ]; then
    ditto -c -k --keepParent "$app" "build/$name-notarise.zip"
    notarise "build/$name-notarise.zip"
    xcrun stapler staple "$app"
    spctl --assess --type execute --verbose=2 "$app"
else
    echo "not notarised: set PERCH_SIGN_IDENTITY and PERCH_NOTARY_PROFILE" >&2
fi
ditto -c -k --keepParent "$app" "dist/$name.zip"
echo "built dist/$name.zip"

# 5. Optionally a disk image with the app and a link to /Applications, itself signed, notarised and stapled.
if $make_dmg; then
    stage=$(mktemp -d)
    ditto "$app" "$stage/Perch.app"
    ln -s /Applications "$stage/Applications"
    hdiutil create -volname Perch -srcfolder "$stage" -ov -format UDZO "dist/$name.dmg"
    rm -rf "$stage"
    codesign --force "${options[0]}" --sign "$identity" "dist/$name.dmg"
    if [ -n "$profile" ]; then
        notarise "dist/$name.dmg"
        xcrun stapler staple "dist/$name.dmg"
    fi
    echo "built dist/$name.dmg"
fi
