#!/usr/bin/env bash
# Installs what neutrino needs on Debian 12 (run as root): the kernel tools, daemons and clients it drives, the
# Debian kernel package the VM image boots (downloaded, never installed: see below), then the Python venv with
# neutrino and its test tools. Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(iproute2 openvswitch-switch dnsmasq-base dnsmasq-utils iptables ipset nftables conntrack ethtool busybox
          isc-dhcp-client iputils-ping netcat-openbsd tcpdump iperf3 curl procps postgresql python3-venv
          chromium chromium-driver prometheus nodejs)   # the page's browser tests, the scrape test, topology.js

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  # Keep package scripts from starting services (dnsmasq, OVS, PostgreSQL) in the root namespace.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && guard=1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
fi

# The VM image's kernel (vmlinuz + virtio modules): linux-image-amd64's current kernel package, fetched as a .deb and
# unpacked by neutrino when it builds the image. Installing it would run initramfs-tools and pull udev/systemd
# upgrades into the host; the lab needs none of that.
KERNEL_DEBS=/var/cache/neutrino/kernel
kernel=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
if [ -n "$kernel" ] && ! ls "$KERNEL_DEBS/${kernel}"_*.deb >/dev/null 2>&1; then
  echo "downloading $kernel (unpacked for the VM image, not installed)"
  mkdir -p "$KERNEL_DEBS"
  (cd "$KERNEL_DEBS" && apt-get download -q "$kernel" 2>&1 | grep -v "^W: Download is performed unsandboxed" || true)
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.neutrino-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -e '.[test]'
  touch "$stamp"
fi

# The VM image (kernel + initramfs, cached by its inputs under /var/cache/neutrino/vm): built now so the first
# `neutrino instance create --kind vm` does not wait for it.
if ls "$KERNEL_DEBS"/linux-image-*.deb >/dev/null 2>&1; then
  .venv/bin/python -c 'from neutrino.instances import vmimage; print("VM image:", vmimage.ensure_image().initrd)'
fi
