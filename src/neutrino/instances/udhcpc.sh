#!/bin/sh
# busybox udhcpc event script of the qemu VM image (vm_init.sh runs udhcpc with it): configures only eth0 and
# $NEUTRINO_RESOLV_CONF. Called as `udhcpc.sh EVENT` with udhcpc's variables ($interface $ip $mask $router $dns
# $domain $mtu $staticroutes). The image's `ip` is busybox's, which has no -batch: one `ip` per change. (Namespace
# guests run ISC dhclient with dhclient.sh.)

set -u

ip_lines() {
    # one `ip -4` per line of $1
    set -f
    while read -r line; do
        [ -n "$line" ] && ip -4 $line
    done <<END
$1
END
    set +f
    return 0
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
    ip_lines "addr flush dev $interface scope global
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
    ip_lines "$cmds"
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
exit 0
