#!/usr/bin/env bash
# Installs what building and testing pam_yubiotp needs on Debian/Ubuntu,
# idempotently: nothing is installed when everything is already there.
set -euo pipefail

packages=(
  libpam0g-dev     # links the module (-lpam)
  libpam-wrapper   # runs libpam against private service files, no root needed
  libnss-wrapper   # private passwd/group files for test users
  libpam-yubico    # pam_yubico(8): the option list the migration table is checked against; the cloud benchmark baseline
  pamtester        # manual smoke tests and benchmarks
  strace           # crash-injection tests (kill at the real rename syscall)
  openssh-server   # the end-to-end test with a real sshd (run as root, on 127.0.0.1)
  openssh-client
  build-essential  # the C test application (gcc) and make deb (dpkg-buildpackage requires it)
  make
  time             # GNU time: max RSS in the benchmarks
  etcd-server      # the shared-counter tests start real etcd members on 127.0.0.1
  etcd-client      # etcdctl: snapshot save/restore in the rollback test
  mount            # bind mounts in the OpenSSH test's private mount namespace
  debhelper        # make deb: dpkg-buildpackage over debian/
  lintian          # the package test: 0 errors, 0 warnings
  slapd            # the LDAP mapping tests start their own slapd on 127.0.0.1
  ldap-utils       # ldapsearch/ldapadd, for debugging those tests
  rsync            # the yubiotp-ssh test copies files through rsync -e ssh
  pandoc           # man/build.sh: the docs test checks the roff pages match their .md sources
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The postinsts of slapd, etcd-server and openssh-server start system
  # daemons: the tests never use them (they run their own on random ports),
  # so a daemon we just installed is stopped and disabled. One that was
  # there before is left as found.
  for svc in slapd:slapd etcd-server:etcd openssh-server:ssh; do
    pkg=${svc%%:*} unit=${svc#*:}
    [[ " ${missing[*]} " == *" $pkg "* ]] || continue
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      $sudo systemctl disable --now "$unit" >/dev/null 2>&1 || true
    else
      $sudo service "$unit" stop >/dev/null 2>&1 || true
      $sudo update-rc.d "$unit" disable >/dev/null 2>&1 || true
    fi
  done
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "setup: cargo not found; install Rust (rustup) first" >&2
  exit 1
fi

# pam_wrapper leaves /tmp/pam.<c> behind when a wrapped process is killed;
# 62 stale ones make every wrapped run fail.
find /tmp -maxdepth 1 -name 'pam.?' -type d -user "$(id -u)" -mmin +60 -exec rm -rf {} + 2>/dev/null || true
