"""List semantics of the Neutron API: filters (repeat = OR), tag filters, fields, sorting, pagination with links."""
from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlencode

from neutrino.api.attrs import as_int, show
from neutrino.errors import bad_request

TAG_FILTERS = {"tags", "tags-any", "not-tags", "not-tags-any"}


@dataclass
class ListQuery:
    filters: dict[str, list[str]] = field(default_factory=dict)
    fields: list[str] = field(default_factory=list)
    sorts: list[tuple[str, bool]] = field(default_factory=list)   # (key, ascending)
    limit: int | None = None
    marker: str | None = None
    page_reverse: bool = False


def parse(items: list[tuple[str, str]], known: set[str], max_limit: int = -1) -> ListQuery:
    """Query-string pairs -> ListQuery; unknown filter or sort keys are 400 (filter-validation, sort-key-validation)."""
    q = ListQuery()
    keys, dirs = [], []
    for k, v in items:
        if "\x00" in k or "\x00" in v:
            raise bad_request("Invalid input for operation: NUL in the query string.", "InvalidInput")
        if k.endswith(".json"):
            k = k[:-5]
        if k == "fields":
            q.fields.extend(f for f in v.split(",") if f)
        elif k == "sort_key":
            keys.append(v)
        elif k == "sort_dir":
            if v not in ("asc", "desc"):
                raise bad_request(f"Invalid input for operation: sort_dir '{show(v)}' must be 'asc' or 'desc'.",
                                  "InvalidInput")
            dirs.append(v == "asc")
        elif k == "limit":
            q.limit = as_int(v)
            if q.limit is None:
                raise bad_request(f"Invalid input for operation: limit '{show(v)}' is not an integer.",
                                  "InvalidInput")
            if q.limit < 0:
                raise bad_request(f"Limit must be an integer 0 or greater and not '{show(v)}'", "InvalidInput")
        elif k == "marker":
            q.marker = v
        elif k == "page_reverse":
            q.page_reverse = v.lower() == "true"
        else:
            base = k.split(".")[0]
            if k not in TAG_FILTERS and base not in known:
                raise bad_request(f"[{show(k)}] is invalid attribute for filtering", "HTTPBadRequest")
            q.filters.setdefault(k, []).append(v)
    if dirs and len(dirs) != len(keys):
        raise bad_request("The number of sort_keys and sort_dirs must be same", "InvalidInput")
    for i, key in enumerate(keys):
        if key not in known:
            raise bad_request(f"{show(key)} is an invalid attribute for sort_keys", "HTTPBadRequest")
        q.sorts.append((key, dirs[i] if dirs else True))
    if q.limit == 0:
        q.limit = None
    if max_limit > 0 and (q.limit is None or q.limit > max_limit):
        q.limit = max_limit
    return q


def _match_value(actual, wanted: list[str]) -> bool:
    if isinstance(actual, list):
        return any(_match_value(a, wanted) for a in actual)
    if isinstance(actual, bool):
        return any(w.lower() == str(actual).lower() for w in wanted)
    if actual is None:
        return "" in wanted or "None" in wanted
    return str(actual) in wanted


def _match_fixed_ips(ips: list[dict], wanted: list[str]) -> bool:
    """fixed_ips=ip_address=X / subnet_id=Y / ip_address_substr=Z (repeats are OR, as Neutron)."""
    for w in wanted:
        k, _, v = w.partition("=")
        for ip in ips:
            if (k == "ip_address_substr" and v in ip["ip_address"]) or ip.get(k) == v:
                return True
    return False


def _match_tags(tags: list[str], key: str, wanted: list[str]) -> bool:
    want = {t for w in wanted for t in w.split(",") if t}
    have = set(tags)
    return {"tags": want <= have, "tags-any": bool(want & have), "not-tags": not want <= have,
            "not-tags-any": not (want & have)}[key]


def apply_filters(items: list[dict], filters: dict[str, list[str]]) -> list[dict]:
    for key, wanted in filters.items():
        if key in TAG_FILTERS:
            items = [i for i in items if _match_tags(i.get("tags", []), key, wanted)]
        elif key == "fixed_ips":
            items = [i for i in items if _match_fixed_ips(i.get("fixed_ips", []), wanted)]
        elif "." in key:     # e.g. external_gateway_info.network_id
            top, sub = key.split(".", 1)
            items = [i for i in items if isinstance(i.get(top), dict) and _match_value(i[top].get(sub), wanted)]
        else:
            items = [i for i in items if _match_value(i.get(key), wanted)]
    return items


def _sort_key(value):
    return (value is None, str(value) if not isinstance(value, (int, float)) or isinstance(value, bool) else value)


def sort_and_page(items: list[dict], q: ListQuery) -> list[dict]:
    """Sort (then by id), cut at marker and limit (backwards from the marker with page_reverse)."""
    sorts = q.sorts or ([("id", True)] if q.limit or q.marker else [])
    for key, asc in reversed(sorts + ([("id", True)] if sorts and sorts[-1][0] != "id" else [])):
        items.sort(key=lambda i, k=key: _sort_key(i.get(k)), reverse=not asc)
    if q.page_reverse:
        items.reverse()
    start = 0
    if q.marker:
        ids = [i["id"] for i in items]
        start = ids.index(q.marker) + 1 if q.marker in ids else 0
    page = items[start:start + q.limit if q.limit else len(items)]
    if q.page_reverse:
        page.reverse()
    return page


def links(base_url: str, items: list[tuple[str, str]], page: list[dict], q: ListQuery) -> list[dict]:
    """Neutron's links: `next` unless a short forward page, `previous` unless a short backward one (a full page
    always links on: the server does not look ahead). `next` starts after the page's last item, `previous` before
    its first one, with page_reverse=True."""
    if not q.limit:
        return []
    keep = [(k, v) for k, v in items if k not in ("marker", "page_reverse")]
    short = len(page) < q.limit
    out = []
    if not (short and not q.page_reverse):
        marker = [("marker", page[-1]["id"])] if page else []
        out.append({"rel": "next", "href": f"{base_url}?{urlencode(keep + marker)}"})
    if not (short and q.page_reverse):
        marker = [("marker", page[0]["id"])] if page else []
        out.append({"rel": "previous", "href": f"{base_url}?{urlencode(keep + marker + [('page_reverse', 'True')])}"})
    return out


def select_fields(items: list[dict], fields: list[str]) -> list[dict]:
    if not fields:
        return items
    want = set(fields) | ({"tenant_id"} if "project_id" in fields else set())
    return [{k: v for k, v in i.items() if k in want} for i in items]
