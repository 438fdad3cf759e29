#!/bin/sh
# Removes what scripts/install.sh added, and nothing else, using the manifest
# it wrote ($DESTDIR$PREFIX/share/pam_yubiotp/install-manifest).
#
#   DESTDIR=... PREFIX=... scripts/uninstall.sh      (same values as install)
#
# Kept, always: keys (/etc/yubiotp/keys), counter state (/var/lib/yubiotp/*),
# the mapping files, anything else you added, and /etc/yubiotp/yubiotp.toml
# once you edited it (it is removed only while identical to the installed
# example). A directory is removed only when install.sh created it and it is
# empty now.
#
# The script refuses to remove the module while any file in /etc/pam.d uses
# it (those services would lock everyone out; FORCE=1 removes it anyway),
# checked before anything changes. On a real system (DESTDIR empty) the
# common-* lines pam-auth-update wrote from the profile `ykmap enable`
# installed do not count: the profile is then taken out (pam-auth-update
# --package --remove yubiotp) and deleted.
set -eu

DESTDIR=${DESTDIR:-}
PREFIX=${PREFIX:-/usr}
FORCE=${FORCE:-}

say() { echo "uninstall: $*" >&2; }
die() { echo "uninstall: error: $*" >&2; exit 1; }

manifest="$DESTDIR$PREFIX/share/pam_yubiotp/install-manifest"
[ -f "$manifest" ] || die "$manifest not found: nothing installed with these DESTDIR/PREFIX (pass the values used for make install)"

# Read it once: it is one of the files to remove.
list=$(mktemp)
trap 'rm -f "$list"' EXIT INT TERM
grep -v '^#' "$manifest" | grep -v '^$' > "$list" || true

# Every path must be absolute and free of "..", whatever the file says.
while read -r kind path _rest; do
    case "$kind" in dir|file|config) ;; *) die "bad manifest line: $kind $path" ;; esac
    case "$path" in
        /*) ;;
        *) die "bad manifest path: $path" ;;
    esac
    case "$path" in
        */../*|*/..|*/./*) die "bad manifest path: $path" ;;
    esac
done < "$list"

# --- never pull the module out from under a PAM stack that uses it ----------
# Checked before anything changes: the common-* files pam-auth-update wrote
# from our profile do not count (it takes the module out of them below);
# any other file using the module stops the removal.
profile=/usr/share/pam-configs/yubiotp
managed=0
if [ -z "$DESTDIR" ]; then
    if [ "$(id -u)" != 0 ]; then die "uninstalling from / needs root"; fi
    if [ -f "$profile" ] && command -v pam-auth-update >/dev/null 2>&1; then managed=1; fi
fi
users=$(grep -l '^[^#]*pam_yubiotp\.so' "$DESTDIR"/etc/pam.d/* 2>/dev/null || true)
if [ "$managed" = 1 ]; then
    users=$(printf '%s\n' "$users" | grep -v '^/etc/pam\.d/common-' || true)
fi
if [ -n "$users" ]; then
    if [ -z "$FORCE" ]; then
        say "these PAM files still use pam_yubiotp.so:"
        echo "$users" | sed 's/^/  /' >&2
        die "removing the module would lock those services out; edit them first (or FORCE=1)"
    fi
    say "warning: FORCE=1: removing the module although these PAM files use it: $users"
fi
if [ "$managed" = 1 ]; then
    say "taking the yubiotp profile out of /etc/pam.d/common-* (pam-auth-update --package --remove yubiotp)"
    pam-auth-update --package --remove yubiotp
    # `ykmap enable` installed it (not in the manifest): it goes with the module.
    say "removing $profile (installed by ykmap enable)"
    rm -f "$profile"
fi

# --- files ------------------------------------------------------------------
while read -r kind path sum; do
    target="$DESTDIR$path"
    case "$kind" in
        file)
            if [ -f "$target" ] || [ -L "$target" ]; then
                rm -f "$target"
            fi
            ;;
        config)
            if [ -f "$target" ] && [ ! -L "$target" ]; then
                if [ "$(sha256sum "$target" | cut -d' ' -f1)" = "$sum" ]; then
                    rm -f "$target"
                else
                    say "kept $path: it was edited"
                fi
            fi
            ;;
    esac
done < "$list"

# --- directories, deepest first, only when empty -----------------------------
dirs=$(mktemp)
trap 'rm -f "$list" "$dirs"' EXIT INT TERM
awk '$1 == "dir" { print $2 }' "$list" | sort -r > "$dirs"
# Reverse lexical order lists every child before its parent.
while read -r path; do
    target="$DESTDIR$path"
    [ -d "$target" ] && [ ! -L "$target" ] || continue
    if rmdir "$target" 2>/dev/null; then
        :
    else
        case "$path" in
            /etc/yubiotp) say "kept $path (keys, mapping or your configuration are in it)" ;;
            /var/lib/yubiotp) say "kept $path (counter state is in it)" ;;
            *pam_yubiotp*) say "kept $path (not empty)" ;;
            *) ;;
        esac
    fi
done < "$dirs"

say "done. Keys, counter state and edited configuration were kept."
