#!/bin/busybox sh
# /etc/rcS of a neutrino VM (busybox init runs it once at boot): virtio NIC drivers by insmod (no modprobe, no
# depmod: /etc/modules lists the .ko files in load order), DHCP on eth0 with the lab's udhcpc event script, a
# cloud-init-like first boot from the metadata service (hostname, public keys, user data run as a script), then
# dropbear on tcp/22. Every step says "neutrino-guest: ..." on the serial console; the host waits on those lines.

say() { echo "neutrino-guest: $*"; }

/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /run /tmp /var/log /root/.ssh /etc/dropbear
mount -t devpts devpts /dev/pts
chmod 700 /root /root/.ssh
for ko in $(cat /etc/modules); do insmod "/lib/modules/$ko" || say "insmod $ko failed"; done
ip link set lo up
say "boot: DHCP on eth0"

if NEUTRINO_RESOLV_CONF=/etc/resolv.conf udhcpc -i eth0 -s /etc/udhcpc.sh -t 60 -T 1 -A 1 \
        -O mtu -O staticroutes -p /run/udhcpc.pid >/var/log/udhcpc.log 2>&1; then
    say "lease $(ip -4 -o addr show dev eth0 | awk '{print $4}')"
else
    say "no DHCP lease on eth0"
fi

MD=http://169.254.169.254/latest
fetch() { timeout 10 wget -q -O "$2" "$MD/$1"; }     # (busybox 1.35 wget -T segfaults)
tries=0
until fetch meta-data/instance-id /run/instance-id; do
    tries=$((tries + 1))
    [ "$tries" -ge 30 ] && break
    sleep 1
done
if [ -s /run/instance-id ]; then
    say "metadata instance-id $(cat /run/instance-id)"
    fetch meta-data/hostname /etc/hostname && hostname -F /etc/hostname && say "hostname $(hostname)"
    i=0
    while fetch "meta-data/public-keys/$i/openssh-key" /run/key; do
        cat /run/key >> /root/.ssh/authorized_keys && echo >> /root/.ssh/authorized_keys
        i=$((i + 1))
    done
    chmod 600 /root/.ssh/authorized_keys 2>/dev/null
    say "public keys $i"
    if fetch user-data /run/user-data && [ -s /run/user-data ]; then
        chmod +x /run/user-data
        (cd /root && HOME=/root /run/user-data) >/var/log/user-data.log 2>&1
        say "user-data exit $?"
    fi
else
    say "no metadata service"
fi

dropbear -R -p 22 -P /run/dropbear.pid
say "sshd on 22"
say "ready"
