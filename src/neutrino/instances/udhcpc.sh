#!/bin/sh
# busybox udhcpc event script for a neutrino guest: configures only the guest's own interface and its resolv.conf.
# Called as `udhcpc.sh EVENT` inside the guest namespace with udhcpc's variables ($interface $ip $mask $router $dns
# $domain $mtu $staticroutes). resolv.conf goes to $NEUTRINO_RESOLV_CONF (/etc/netns/<guest ns>/resolv.conf), never
# to /etc/resolv.conf, which outside a bind mount is the host's. Once the guest is fully configured (address, routes,
# resolv.conf, announcement) the address is written to $NEUTRINO_LEASE_FILE, when set, for whoever waits on the guest;
# a lost lease empties that file. Each event runs one `ip -batch` for all of its changes: the script sits between
# the server's ACK and the guest being usable, and every program it starts costs milliseconds on a busy host.

set -u

ip_batch() {
    # -force: go on after a failed line, as separate commands would
    ip -4 -force -batch -
}

configure() {
    # "bound" comes after a deconfig or a NAK: drop what an earlier lease left; "renew" keeps the same address
    {
        [ "$1" = bound ] && echo "addr flush dev $interface scope global"
        echo "addr replace $ip/${mask:-32} dev $interface"
        echo "link set dev $interface ${mtu:+mtu $mtu }up"
        if [ -n "${staticroutes:-}" ]; then
            # RFC 3442: with classless routes the router option is ignored; pairs are "dst/len gateway".
            set -- $staticroutes
            while [ $# -ge 2 ]; do
                if [ "$2" = "0.0.0.0" ]; then
                    echo "route replace $1 dev $interface"
                else
                    echo "route replace $1 via $2 dev $interface"
                fi
                shift 2
            done
        elif [ -n "${router:-}" ]; then
            set -- $router
            echo "route replace default via $1 dev $interface"
        fi
    } | ip_batch
    if [ -n "${NEUTRINO_RESOLV_CONF:-}" ]; then
        {
            [ -n "${domain:-}" ] && echo "search $domain"
            for ns in ${dns:-}; do echo "nameserver $ns"; done
        } > "$NEUTRINO_RESOLV_CONF"     # written in place: a bind mount of this file stays valid
    fi
}

announce() {
    # RFC 5227 ARP announcement of the new address, as OSes do after configuring one: a router that still maps it to
    # the MAC of the port that had it before (deleted, the address handed on) updates at once instead of after its
    # neighbour entry times out.
    busybox arping -U -c 1 -I "$interface" -s "$ip" "$ip" >/dev/null 2>&1 || true
}

case "$1" in
    deconfig)
        [ -n "${NEUTRINO_LEASE_FILE:-}" ] && : > "$NEUTRINO_LEASE_FILE"
        printf 'addr flush dev %s scope global\nlink set dev %s up\n' "$interface" "$interface" | ip_batch
        ;;
    bound)
        configure bound
        announce
        ;;
    renew)
        configure renew
        ;;
esac
case "$1" in
    bound|renew) [ -n "${NEUTRINO_LEASE_FILE:-}" ] && echo "$ip" > "$NEUTRINO_LEASE_FILE" ;;
esac
exit 0
