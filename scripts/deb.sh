#!/bin/sh
# Builds the Debian package libpam-yubiotp (and its -dbgsym) the Debian way:
# dpkg-buildpackage over debian/ (debhelper). make deb runs it.
#
#   scripts/deb.sh     prints the path of the .deb last
#
# dpkg-buildpackage writes its results next to the source tree, so it runs
# in a copy at $TARGET_DIR/deb/src/libpam-yubiotp (a fixed path: the
# remapped build path, and so the binaries, do not depend on the clone's
# location); the .deb, -dbgsym .deb, .buildinfo and .changes end up in
# $TARGET_DIR/deb/. Cargo builds in $TARGET_DIR/deb-build.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
TARGET_DIR=${TARGET_DIR:-${CARGO_TARGET_DIR:-$here/target}}
out="$TARGET_DIR/deb"
src="$out/src/libpam-yubiotp"

command -v dpkg-buildpackage >/dev/null 2>&1 || {
    echo "deb: dpkg-buildpackage not found (apt-get install dpkg-dev debhelper)" >&2
    exit 1
}
rm -rf "$out/src"
mkdir -p "$src"
# The tracked files when this is a git checkout (no build output, no
# editor leftovers), else everything but target/.
if git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git -C "$here" ls-files -z --cached --others --exclude-standard |
        (cd "$here" && xargs -0 tar --no-recursion -cf - 2>/dev/null) | tar -C "$src" -xf -
else
    tar -C "$here" --exclude=./target -cf - . | tar -C "$src" -xf -
fi
rm -f "$out"/libpam-yubiotp*.deb "$out"/libpam-yubiotp_*.buildinfo "$out"/libpam-yubiotp_*.changes
(
    cd "$src"
    CARGO_TARGET_DIR="$TARGET_DIR/deb-build" dpkg-buildpackage -b -uc -us >&2
)
# dpkg-buildpackage wrote them next to the copy.
for f in "$out/src"/libpam-yubiotp*.deb "$out/src"/libpam-yubiotp_*.buildinfo "$out/src"/libpam-yubiotp_*.changes; do
    [ -f "$f" ] && mv -f "$f" "$out/"
done
arch=$(dpkg --print-architecture)
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
deb="$out/libpam-yubiotp_${version}_${arch}.deb"
[ -f "$deb" ] || { echo "deb: $deb was not built" >&2; exit 1; }
echo "deb: package $deb" >&2
echo "$deb"
