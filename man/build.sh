#!/bin/sh
# Builds the roff man pages from their Markdown sources with pandoc:
#   man/pam_yubiotp.8.md   -> man/pam_yubiotp.8
#   man/yubiotp.toml.5.md  -> man/yubiotp.toml.5
# The generated pages are committed, so installing needs no pandoc.
#
#   man/build.sh           rebuild the pages
#   man/build.sh --check   exit 1 if a committed page differs from its source
#
# Needs pandoc (Debian: apt-get install pandoc). The output depends on the
# pandoc version; the committed pages were made with pandoc 2.17 (Debian 12).
set -eu
cd "$(dirname "$0")"

if ! command -v pandoc >/dev/null 2>&1; then
    echo "man/build.sh: pandoc not found (apt-get install pandoc)" >&2
    exit 2
fi

check=0
case "${1:-}" in
    --check) check=1 ;;
    "") ;;
    *) echo "usage: man/build.sh [--check]" >&2; exit 2 ;;
esac

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

status=0
for src in *.md; do
    page=${src%.md}
    # A whole page with .TH; no date (the output depends only on the source),
    # no smart quotes (TOML values are copied from here), no hyphenation.
    pandoc --standalone --from markdown-smart --to man --metadata date= --metadata hyphenate=false \
        --output "$tmp/$page" "$src"
    if [ "$check" = 1 ]; then
        if ! cmp -s "$tmp/$page" "$page"; then
            echo "man/build.sh: $page is out of date; run man/build.sh" >&2
            status=1
        fi
    else
        cp "$tmp/$page" "$page"
        echo "man/build.sh: wrote man/$page" >&2
    fi
done
exit "$status"
