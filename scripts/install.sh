#!/bin/sh
# Installs pam_yubiotp from an already built tree (make install builds first).
#
#   scripts/install.sh          install into $DESTDIR (default: the system)
#   scripts/install.sh --stage  the same files into $DESTDIR, without the
#                               manifest (debian/rules: the .deb's files)
#
# Environment (all optional):
#   DESTDIR     staging root, prepended to every path (default: empty = /)
#   PREFIX      where ykmap, man pages and docs go (default: /usr)
#   PAMDIR      PAM module directory (default: asked of the system:
#               pkg-config --variable=libdir pam + /security, else the
#               directory that holds pam_unix.so)
#   TARGET_DIR  cargo target directory holding release/ (default:
#               $CARGO_TARGET_DIR, else ./target)
#   DOCDIR      documentation directory (default: $PREFIX/share/doc/pam_yubiotp)
#
# Layout (paths under $DESTDIR):
#   $PAMDIR/pam_yubiotp.so                         0644 root:root
#   $PREFIX/sbin/ykmap                             0755 (skipped with a warning if not built)
#   $PREFIX/bin/yubiotp-ssh                        0755 (the SSH helper for ForceCommand;
#                                                  skipped with a warning if not built)
#   $PREFIX/share/bash-completion/completions/ykmap, zsh/vendor-completions/_ykmap,
#     fish/vendor_completions.d/ykmap.fish         0644 (with ykmap: ykmap completions SHELL)
#   /usr/libexec/yubiotp/yubiotp-resolve           0755 (the module's resolver helper; the
#                                                  path is compiled into the module)
#   /usr/libexec/yubiotp/yubiotp-verify            4755 root:root (the setuid verifier for
#                                                  callers that are not root: screen lockers)
#   $PREFIX/share/man/man5/yubiotp.toml.5, man8/pam_yubiotp.8 (and ykmap.8 if present) 0644
#   $PREFIX/share/doc/pam_yubiotp/{recipes.md,README.md}, examples/...  0644
#   /etc/yubiotp/                                  0700 root:root
#   /etc/yubiotp/yubiotp.toml                      0600 (only if absent; never overwritten)
#   /var/lib/yubiotp/                              0700 root:root
#   /usr/share/pam_yubiotp/pam-configs/yubiotp     0644 (pam-auth-update profile, out of
#                                                  pam-auth-update's sight: `ykmap enable`
#                                                  installs it to /usr/share/pam-configs
#                                                  once `ykmap check` finds no problem)
#   $PREFIX/share/pam_yubiotp/install-manifest     what was installed, for uninstall.sh
#
# /etc, /var/lib, /usr/libexec/yubiotp and /usr/share/pam_yubiotp/pam-configs
# do not follow PREFIX: the module reads /etc/yubiotp/yubiotp.toml and
# /var/lib/yubiotp by default, runs /usr/libexec/yubiotp/yubiotp-resolve
# (cloud.resolver overrides it), and `ykmap enable` reads the profile there.
#
# Every file is written to a temporary name and renamed into place, so a
# running sshd never sees a half-written module. A directory is recorded as
# created only when this script (or an earlier run) created it, so
# uninstall.sh removes exactly what was added.
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr}
TARGET_DIR=${TARGET_DIR:-${CARGO_TARGET_DIR:-$here/target}}
mode=install
case "${1:-}" in
    --stage) mode=stage ;;
    "") ;;
    *) echo "usage: scripts/install.sh [--stage]" >&2; exit 2 ;;
esac

say() { echo "install: $*" >&2; }
die() { echo "install: error: $*" >&2; exit 1; }

case "$PREFIX" in /*) ;; *) die "PREFIX must be an absolute path (got '$PREFIX')" ;; esac
case "$DESTDIR" in ""|/*) ;; *) die "DESTDIR must be an absolute path (got '$DESTDIR')" ;; esac

# --- where PAM modules live: ask the system, never hard-code -------------
pam_module_dir() {
    if [ -n "${PAMDIR:-}" ]; then
        echo "$PAMDIR"
        return
    fi
    if command -v pkg-config >/dev/null 2>&1; then
        libdir=$(pkg-config --variable=libdir pam 2>/dev/null || true)
        if [ -n "$libdir" ] && [ -d "$libdir/security" ]; then
            echo "$libdir/security"
            return
        fi
    fi
    for d in /lib/*/security /usr/lib/*/security /lib64/security /usr/lib64/security \
             /lib/security /usr/lib/security; do
        if [ -e "$d/pam_unix.so" ]; then
            echo "$d"
            return
        fi
    done
    die "cannot find the PAM module directory (no pam.pc for pkg-config, no pam_unix.so); set PAMDIR"
}
PAMDIR=$(pam_module_dir)
case "$PAMDIR" in /*) ;; *) die "PAMDIR must be an absolute path (got '$PAMDIR')" ;; esac

module_src="$TARGET_DIR/release/libpam_yubiotp.so"
ykmap_src="$TARGET_DIR/release/ykmap"
resolve_src="$TARGET_DIR/release/yubiotp-resolve"
verify_src="$TARGET_DIR/release/yubiotp-verify"
ssh_src="$TARGET_DIR/release/yubiotp-ssh"
[ -f "$module_src" ] || die "$module_src not found: build first (make release, or make install)"
[ -f "$resolve_src" ] || die "$resolve_src not found: build first (make release, or make install)"
[ -f "$verify_src" ] || die "$verify_src not found: build first (make release, or make install)"

if [ "$(id -u)" = 0 ]; then
    as_root=1
else
    as_root=0
    [ -n "$DESTDIR" ] || die "installing into / needs root (or set DESTDIR)"
    say "not root: files keep your ownership (root:root in a real install)"
fi

if [ "$mode" = stage ]; then
    [ -n "$DESTDIR" ] || die "--stage needs DESTDIR (the package's staging root)"
fi

# The staging root itself is not part of the install.
if [ -n "$DESTDIR" ]; then mkdir -p "$DESTDIR"; fi

manifest_rel="$PREFIX/share/pam_yubiotp/install-manifest"
manifest="$DESTDIR$manifest_rel"
new_manifest=$(mktemp)
trap 'rm -f "$new_manifest"' EXIT INT TERM

# Directories an earlier run created stay "ours".
was_created() {
    [ -f "$manifest" ] && grep -qxF "dir $1" "$manifest"
}

record() { echo "$*" >> "$new_manifest"; }

# mkdirs PATH MODE: create PATH (under DESTDIR) and any missing parents;
# the last component gets MODE, parents 0755.
mkdirs() {
    target=$1
    want_mode=$2
    path=""
    # Split on "/" without globbing.
    old_ifs=$IFS
    IFS=/
    set -f
    # shellcheck disable=SC2086
    set -- $target
    set +f
    IFS=$old_ifs
    for part in "$@"; do
        [ -n "$part" ] || continue
        path="$path/$part"
        if [ ! -d "$DESTDIR$path" ]; then
            mkdir "$DESTDIR$path"
            chmod 0755 "$DESTDIR$path"
            [ "$as_root" = 1 ] && chown root:root "$DESTDIR$path"
            record "dir $path"
        elif was_created "$path"; then
            record "dir $path"
        fi
    done
    chmod "$want_mode" "$DESTDIR$target"
    if [ "$as_root" = 1 ]; then chown root:root "$DESTDIR$target"; fi
}

# put SRC TARGET MODE: copy atomically (temp name + rename) and record.
put() {
    src=$1
    target=$2
    want_mode=$3
    dst="$DESTDIR$target"
    tmp="$dst.tmp-install.$$"
    cp "$src" "$tmp"
    # chown first: chown(2) clears the setuid bit that chmod sets.
    if [ "$as_root" = 1 ]; then chown root:root "$tmp"; fi
    chmod "$want_mode" "$tmp"
    mv -f "$tmp" "$dst"
    record "file $target"
}

sha256() { sha256sum "$1" | cut -d' ' -f1; }

# --- the module and the tool ----------------------------------------------
mkdirs "$PAMDIR" 0755
put "$module_src" "$PAMDIR/pam_yubiotp.so" 0644
say "module  $PAMDIR/pam_yubiotp.so"
mkdirs /usr/libexec/yubiotp 0755
put "$resolve_src" /usr/libexec/yubiotp/yubiotp-resolve 0755
say "helper  /usr/libexec/yubiotp/yubiotp-resolve"
# Setuid root, like unix_chkpwd: it validates only the caller's own OTP.
# The .deb keeps the mode (dpkg-deb --root-owner-group makes it root:root).
put "$verify_src" /usr/libexec/yubiotp/yubiotp-verify 4755
say "helper  /usr/libexec/yubiotp/yubiotp-verify (setuid root)"

# The SSH second-factor helper (ForceCommand): runs as the user, no setuid.
if [ -f "$ssh_src" ]; then
    mkdirs "$PREFIX/bin" 0755
    put "$ssh_src" "$PREFIX/bin/yubiotp-ssh" 0755
    say "helper  $PREFIX/bin/yubiotp-ssh"
else
    say "warning: $ssh_src not built; yubiotp-ssh is not installed"
fi

if [ -f "$ykmap_src" ]; then
    mkdirs "$PREFIX/sbin" 0755
    put "$ykmap_src" "$PREFIX/sbin/ykmap" 0755
    say "tool    $PREFIX/sbin/ykmap"
    # Shell completions, generated by the ykmap being installed.
    for shell_dir in bash:bash-completion/completions/ykmap zsh:zsh/vendor-completions/_ykmap \
                     fish:fish/vendor_completions.d/ykmap.fish; do
        shell=${shell_dir%%:*}
        rel="$PREFIX/share/${shell_dir#*:}"
        mkdirs "$(dirname "$rel")" 0755
        "$ykmap_src" completions "$shell" > "$new_manifest.completion"
        put "$new_manifest.completion" "$rel" 0644
        rm -f "$new_manifest.completion"
    done
    say "completions for bash, zsh and fish in $PREFIX/share"
else
    say "warning: $ykmap_src not built; ykmap is not installed (build the ykmap-tool crate, then install again)"
fi

# --- man pages --------------------------------------------------------------
for page in "$here"/man/*.[1-9]; do
    [ -f "$page" ] || continue
    name=$(basename "$page")
    section=${name##*.}
    mkdirs "$PREFIX/share/man/man$section" 0755
    put "$page" "$PREFIX/share/man/man$section/$name" 0644
    say "man     $PREFIX/share/man/man$section/$name"
done

# --- docs and examples ------------------------------------------------------
doc=${DOCDIR:-$PREFIX/share/doc/pam_yubiotp}
mkdirs "$doc/examples/pam.d" 0755
mkdirs "$doc/examples/sshd_config.d" 0755
for f in "$here/docs/recipes.md" "$here/README.md"; do
    if [ -f "$f" ]; then put "$f" "$doc/$(basename "$f")" 0644; fi
done
put "$here/etc/yubiotp.toml" "$doc/examples/yubiotp.toml" 0644
put "$here/etc/authorized_yubikeys.example" "$doc/examples/authorized_yubikeys.example" 0644
for f in "$here"/etc/pam.d/*; do
    put "$f" "$doc/examples/pam.d/$(basename "$f")" 0644
done
for f in "$here"/etc/sshd_config.d/*; do
    put "$f" "$doc/examples/sshd_config.d/$(basename "$f")" 0644
done
say "docs    $doc/ (examples/ holds the tested PAM stacks and sshd drop-ins)"

# --- pam-auth-update profile (not visible to pam-auth-update) --------------
# An enabled profile with the unconfigured default config would refuse every
# login (a config error is PAM_SERVICE_ERR), so it is not put where
# pam-auth-update looks: `ykmap enable` does that once the setup checks out.
mkdirs /usr/share/pam_yubiotp/pam-configs 0755
put "$here/etc/pam-configs/yubiotp" /usr/share/pam_yubiotp/pam-configs/yubiotp 0644
say "profile /usr/share/pam_yubiotp/pam-configs/yubiotp (configure, then: ykmap check && ykmap enable)"

# --- configuration and state: created once, never overwritten --------------
mkdirs /etc/yubiotp 0700
mkdirs /var/lib/yubiotp 0700
config=/etc/yubiotp/yubiotp.toml
if [ -e "$DESTDIR$config" ] || [ -L "$DESTDIR$config" ]; then
    # Keep it; remember it as ours only if an earlier run installed it and
    # it is still unedited (uninstall.sh compares the hash again).
    if [ -f "$manifest" ]; then
        grep "^config $config " "$manifest" >> "$new_manifest" || true
    fi
    say "config  $config exists: kept as it is"
else
    tmp="$DESTDIR$config.tmp-install.$$"
    cp "$here/etc/yubiotp.toml" "$tmp"
    chmod 0600 "$tmp"
    if [ "$as_root" = 1 ]; then chown root:root "$tmp"; fi
    mv "$tmp" "$DESTDIR$config"
    record "config $config $(sha256 "$DESTDIR$config")"
    say "config  $config (example, every setting commented out)"
fi

if [ "$mode" = stage ]; then
    # debian/rules packages the staged tree; dpkg keeps its own file list.
    say "staged into $DESTDIR"
    exit 0
fi

# --- manifest ---------------------------------------------------------------
mkdirs "$PREFIX/share/pam_yubiotp" 0755
record "file $manifest_rel"
tmp="$manifest.tmp-install.$$"
{
    echo "# pam_yubiotp install manifest: what scripts/install.sh added."
    echo "# DESTDIR=$DESTDIR PREFIX=$PREFIX PAMDIR=$PAMDIR"
    echo "# uninstall.sh removes these files, the config only while unedited,"
    echo "# and these directories only when empty."
    # Unique lines, order kept (directories are removed in reverse order).
    awk '!seen[$0]++' "$new_manifest"
} > "$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$manifest"

say "done. Nothing is enabled yet: add the module to a PAM stack (see"
say "  $doc/examples/pam.d/ and pam_yubiotp(8)), or, once configured: ykmap check && ykmap enable"
say "Keep a root shell open while you try a new stack."
