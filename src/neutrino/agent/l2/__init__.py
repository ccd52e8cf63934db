"""L2 drivers: `ovs` (the seed's hybrid plug on Open vSwitch) and `linuxbridge` (bridge per network, kernel VXLAN)."""
