#!/bin/sh
# busybox udhcpc event script for a neutrino guest: configures only the guest's own interface and its resolv.conf.
# Called as `udhcpc.sh EVENT` inside the guest namespace with udhcpc's variables ($interface $ip $mask $router $dns
# $domain $mtu $staticroutes). resolv.conf goes to $NEUTRINO_RESOLV_CONF (/etc/netns/<guest ns>/resolv.conf), never
# to /etc/resolv.conf, which outside a bind mount is the host's. Once the guest is fully configured (address, routes,
# resolv.conf, announcement) the address is written to $NEUTRINO_LEASE_FILE, when set, for whoever waits on the guest;
# a lost lease empties that file. Each event starts as few programs as it can (one `ip -batch` for all of its
# changes, none for the deconfig at start): the script sits between the client's start or the server's ACK and the
# guest being usable, and every program it starts costs milliseconds on a busy host.

set -u

ip_batch() {
    # one `ip` for all of an event's changes, fed from a here-document (no pipeline, so no subshell is forked);
    # -force: go on after a failed line, as separate commands would. busybox's `ip` (the qemu VM image's, which sets
    # NEUTRINO_IP_NO_BATCH) has no -batch: there, one `ip` per line.
    if [ -n "${NEUTRINO_IP_NO_BATCH:-}" ]; then
        set -f
        while read -r line; do
            [ -n "$line" ] && ip -4 $line
        done <<END
$1
END
        set +f
        return 0
    fi
    ip -4 -force -batch - <<END
$1
END
}

ipv4_configured() {
    # whether the guest holds an IPv4 address other than loopback's, read from /proc/net/fib_trie ("|-- ADDR" then
    # "/32 host LOCAL") with shell builtins: no program started
    prev=
    while read -r a b c; do
        [ "$a $b $c" = "/32 host LOCAL" ] && [ "${prev#127.}" = "$prev" ] && return 0
        prev=$b
    done < /proc/net/fib_trie
    return 1
}

deconfigure() {
    # at start the interface is up and holds no address (nothing to run); after a lost lease the address goes
    flags=0
    read -r flags 2>/dev/null < "/sys/class/net/$interface/flags" || flags=0
    if [ $((flags & 1)) = 1 ] && ! ipv4_configured; then
        return
    fi
    ip_batch "addr flush dev $interface scope global
link set dev $interface up"
}

configure() {
    # "bound" comes after a deconfig or a NAK: drop what an earlier lease left; "renew" keeps the same address
    cmds="addr replace $ip/${mask:-32} dev $interface
link set dev $interface ${mtu:+mtu $mtu }up"
    [ "$1" = bound ] && cmds="addr flush dev $interface scope global
$cmds"
    if [ -n "${staticroutes:-}" ]; then
        # RFC 3442: with classless routes the router option is ignored; pairs are "dst/len gateway".
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            if [ "$2" = "0.0.0.0" ]; then
                cmds="$cmds
route replace $1 dev $interface"
            else
                cmds="$cmds
route replace $1 via $2 dev $interface"
            fi
            shift 2
        done
    elif [ -n "${router:-}" ]; then
        set -- $router
        cmds="$cmds
route replace default via $1 dev $interface"
    fi
    ip_batch "$cmds"
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
        deconfigure
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
