"""Tables of the service extensions: QoS policies and rules (with their port/network bindings and the per-project
default), address groups, metering labels and rules, and the metering counters agents report."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from neutrino.db.models import ID, Base, StdAttrs


class QosPolicy(StdAttrs, Base):
    __tablename__ = "qos_policies"
    name: Mapped[str] = mapped_column(String(255), default="")      # `shared`: a `*` RBAC policy (core.rbac)


class QosRule(Base):
    """One rule of any type; one bandwidth_limit/minimum_bandwidth per direction and one dscp_marking per policy
    (the unique key: direction is '' for dscp_marking)."""
    __tablename__ = "qos_rules"
    __table_args__ = (UniqueConstraint("qos_policy_id", "type", "direction", name="uniq_qos_rules0policy0type0dir"),)
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    qos_policy_id: Mapped[str] = mapped_column(ID, ForeignKey("qos_policies.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    direction: Mapped[str] = mapped_column(String(16), default="")
    max_kbps: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    max_burst_kbps: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    min_kbps: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    dscp_mark: Mapped[int | None] = mapped_column(Integer, nullable=True)


class QosPortBinding(Base):
    __tablename__ = "qos_port_policy_bindings"
    port_id: Mapped[str] = mapped_column(ID, ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[str] = mapped_column(ID, ForeignKey("qos_policies.id"), index=True)


class QosNetworkBinding(Base):
    __tablename__ = "qos_network_policy_bindings"
    network_id: Mapped[str] = mapped_column(ID, ForeignKey("networks.id", ondelete="CASCADE"), primary_key=True)
    policy_id: Mapped[str] = mapped_column(ID, ForeignKey("qos_policies.id"), index=True)


class QosDefault(Base):
    """The project's default policy, given to its new networks that name none."""
    __tablename__ = "qos_policies_default"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    policy_id: Mapped[str] = mapped_column(ID, ForeignKey("qos_policies.id", ondelete="CASCADE"), index=True)


class AddressGroup(StdAttrs, Base):
    __tablename__ = "address_groups"
    name: Mapped[str] = mapped_column(String(255), default="")


class AddressGroupAddress(Base):
    __tablename__ = "address_associations"
    address_group_id: Mapped[str] = mapped_column(ID, ForeignKey("address_groups.id", ondelete="CASCADE"),
                                                  primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)


class MeteringLabel(StdAttrs, Base):
    __tablename__ = "meteringlabels"
    name: Mapped[str] = mapped_column(String(255), default="")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)


class MeteringLabelRule(Base):
    __tablename__ = "meteringlabelrules"
    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), index=True, default="")
    metering_label_id: Mapped[str] = mapped_column(ID, ForeignKey("meteringlabels.id", ondelete="CASCADE"),
                                                   index=True)
    direction: Mapped[str] = mapped_column(String(16))
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    destination_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    excluded: Mapped[bool] = mapped_column(Boolean, default=False)


class MeteringCounter(Base):
    """What a label counted on one router, as the router's agent last read it from the qrouter namespace."""
    __tablename__ = "meteringcounters"
    label_id: Mapped[str] = mapped_column(ID, ForeignKey("meteringlabels.id", ondelete="CASCADE"), primary_key=True)
    router_id: Mapped[str] = mapped_column(ID, ForeignKey("routers.id", ondelete="CASCADE"), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    packets: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime)
