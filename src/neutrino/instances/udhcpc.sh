#!/bin/sh
# busybox udhcpc event script for a neutrino guest: configures only the guest's own interface and its resolv.conf.
# Called as `udhcpc.sh EVENT` inside the guest namespace with udhcpc's variables ($interface $ip $mask $router $dns
# $domain $mtu $staticroutes). resolv.conf goes to $NEUTRINO_RESOLV_CONF (/etc/netns/<guest ns>/resolv.conf), never
# to /etc/resolv.conf, which outside a bind mount is the host's. Once the guest is fully configured (address, routes,
# resolv.conf, announcement) the address is written to $NEUTRINO_LEASE_FILE, when set, for whoever waits on the guest.

set -u

configure() {
    want="$ip/${mask:-32}"
    if ! ip -4 addr show dev "$interface" | grep -q "inet $want "; then
        ip -4 addr flush dev "$interface" scope global
        ip addr add "$want" dev "$interface"
    fi
    [ -n "${mtu:-}" ] && ip link set dev "$interface" mtu "$mtu"
    ip link set dev "$interface" up
    if [ -n "${staticroutes:-}" ]; then
        # RFC 3442: with classless routes the router option is ignored; pairs are "dst/len gateway".
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$2" = "0.0.0.0" ]; then
                ip route replace "$1" dev "$interface"
            else
                ip route replace "$1" via "$2" dev "$interface"
            fi
            shift 2
        done
    elif [ -n "${router:-}" ]; then
        set -- $router
        ip route replace default via "$1" dev "$interface"
    fi
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
        [ -n "${NEUTRINO_LEASE_FILE:-}" ] && rm -f "$NEUTRINO_LEASE_FILE"
        ip -4 addr flush dev "$interface" scope global
        ip link set dev "$interface" up
        ;;
    bound)
        configure
        announce
        ;;
    renew)
        configure
        ;;
esac
case "$1" in
    bound|renew) [ -n "${NEUTRINO_LEASE_FILE:-}" ] && echo "$ip" > "$NEUTRINO_LEASE_FILE" ;;
esac
exit 0
