"""`/v2.0/rbac-policies`: share a network, security group, subnet pool, address scope or QoS policy with one
project or all."""
from neutrino.api.attrs import PROJECT_ATTRS, REQUIRED, Attr, one_of, string, uuid_str
from neutrino.api.controller import Resource
from neutrino.core import rbac

RBAC_POLICY = Resource("rbac_policy", "rbac-policies", rbac, delete=rbac.delete_policy, taggable=False,
                       plural="rbac_policies", attrs={
    **PROJECT_ATTRS,
    "object_type": Attr(put=False, default=REQUIRED, convert=one_of(*rbac.OBJECTS)),
    "object_id": Attr(put=False, default=REQUIRED, convert=uuid_str),
    "action": Attr(put=False, default=REQUIRED, convert=one_of(rbac.SHARED, rbac.EXTERNAL)),
    "target_tenant": Attr(default=REQUIRED, convert=string(255)),
}, sql_filters={"object_type": rbac.T.c.object_type, "object_id": rbac.T.c.object_id, "action": rbac.T.c.action,
                "target_tenant": rbac.T.c.target_project})
