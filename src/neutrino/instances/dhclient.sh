#!/bin/sh
# ISC dhclient event script (-sf) for a neutrino namespace guest: configures only the guest's own interface and its
# resolv.conf. Called by dhclient inside the guest namespace with $reason and dhclient's variables ($interface
# $new_ip_address $new_subnet_mask $new_routers $new_domain_name_servers $new_domain_name $new_interface_mtu
# $new_rfc3442_classless_static_routes $old_ip_address), plus what its -e options add:
# resolv.conf goes to $NEUTRINO_RESOLV_CONF (/etc/netns/<guest ns>/resolv.conf), never to /etc/resolv.conf, which
# outside a bind mount is the host's. Once the guest is fully configured (address, routes, resolv.conf,
# announcement) the address is written to $NEUTRINO_LEASE_FILE, when set, for whoever waits on the guest; a lost
# lease empties that file. Each event starts as few programs as it can (one `ip -batch` for all of its changes): the
# script sits between the server's ACK and the guest being usable. (The qemu VM image's busybox runs udhcpc.sh.)

set -u

ip_batch() {
    # one `ip` for all of an event's changes, fed from a here-document (no pipeline, so no subshell is forked);
    # -force: go on after a failed line, as separate commands would
    ip -4 -force -batch - <<END
$1
END
}

configure() {
    # a new lease (BOUND, REBOOT, or a renewal that changed the address) drops what an earlier one left first
    cmds="addr replace $new_ip_address/${new_subnet_mask:-255.255.255.255} dev $interface
link set dev $interface ${new_interface_mtu:+mtu $new_interface_mtu }up"
    [ "$1" = new ] && cmds="addr flush dev $interface scope global
$cmds"
    if [ -n "${new_rfc3442_classless_static_routes:-}" ]; then
        # RFC 3442, as dhclient hands it: "width dst-octets… gw-octets×4" per route; the router option is ignored
        set -- $new_rfc3442_classless_static_routes
        while [ $# -ge 5 ]; do
            width=$1
            shift
            dst=0.0.0.0 octets=$(( (width + 7) / 8 ))
            case $octets in
                1) dst=$1.0.0.0 ;;
                2) dst=$1.$2.0.0 ;;
                3) dst=$1.$2.$3.0 ;;
                4) dst=$1.$2.$3.$4 ;;
            esac
            shift $octets
            [ $# -ge 4 ] || break
            gw=$1.$2.$3.$4
            shift 4
            if [ "$gw" = 0.0.0.0 ]; then
                cmds="$cmds
route replace $dst/$width dev $interface"
            else
                cmds="$cmds
route replace $dst/$width via $gw dev $interface"
            fi
        done
    elif [ -n "${new_routers:-}" ]; then
        set -- $new_routers
        cmds="$cmds
route replace default via $1 dev $interface"
    fi
    ip_batch "$cmds"
    if [ -n "${NEUTRINO_RESOLV_CONF:-}" ]; then
        {
            [ -n "${new_domain_name:-}" ] && echo "search $new_domain_name"
            for ns in ${new_domain_name_servers:-}; do echo "nameserver $ns"; done
        } > "$NEUTRINO_RESOLV_CONF"     # written in place: a bind mount of this file stays valid
    fi
}

announce() {
    # RFC 5227 ARP announcement of the new address, as OSes do after configuring one: a router that still maps it to
    # the MAC of the port that had it before (deleted, the address handed on) updates at once instead of after its
    # neighbour entry times out.
    busybox arping -U -c 1 -I "$interface" -s "$new_ip_address" "$new_ip_address" >/dev/null 2>&1 || true
}

leased() {
    [ -n "${NEUTRINO_LEASE_FILE:-}" ] && echo "$new_ip_address" > "$NEUTRINO_LEASE_FILE"
    return 0
}

lost() {
    [ -n "${NEUTRINO_LEASE_FILE:-}" ] && : > "$NEUTRINO_LEASE_FILE"
    return 0
}

case "$reason" in
    PREINIT)
        # the interface is normally up already (the hypervisor's side set both ends up): then nothing to run
        lost
        flags=0
        read -r flags 2>/dev/null < "/sys/class/net/$interface/flags" || flags=0
        [ $((flags & 1)) = 1 ] || ip_batch "link set dev $interface up"
        ;;
    BOUND|REBOOT)
        configure new
        announce
        leased
        ;;
    RENEW|REBIND)
        if [ "${old_ip_address:-}" = "$new_ip_address" ]; then
            configure same
        else
            configure new
            announce
        fi
        leased
        ;;
    EXPIRE|FAIL|RELEASE|STOP)
        lost
        ip_batch "addr flush dev $interface scope global"
        ;;
    TIMEOUT)
        exit 1      # no server answered: an old lease from the lease file is not taken on trust
        ;;
esac
exit 0
