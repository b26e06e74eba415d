#!/usr/bin/env python3
"""Extracts the schemas of the kinds the test world serves from a kubernetes-validate wheel.

Usage: vendor-schemas.py WHEEL OUT
Reads v1.31.0-local-strict/_definitions.json from the wheel, keeps the definitions reachable from
the served kinds, drops the `description` texts (size only; nothing the validator reads), and
writes them as one JSON document {"version", "source", "kinds", "$defs"}.
"""
import hashlib, json, sys, zipfile

VERSION = "v1.31.0"
MEMBER = f"kubernetes_validate/kubernetes-json-schema/{VERSION}-local-strict/_definitions.json"
KINDS = {
    "v1/Namespace": "io.k8s.api.core.v1.Namespace",
    "v1/ServiceAccount": "io.k8s.api.core.v1.ServiceAccount",
    "v1/Secret": "io.k8s.api.core.v1.Secret",
    "v1/ConfigMap": "io.k8s.api.core.v1.ConfigMap",
    "v1/Pod": "io.k8s.api.core.v1.Pod",
    "v1/Event": "io.k8s.api.core.v1.Event",
    "batch/v1/Job": "io.k8s.api.batch.v1.Job",
    "coordination.k8s.io/v1/Lease": "io.k8s.api.coordination.v1.Lease",
    "rbac.authorization.k8s.io/v1/Role": "io.k8s.api.rbac.v1.Role",
    "rbac.authorization.k8s.io/v1/RoleBinding": "io.k8s.api.rbac.v1.RoleBinding",
    "authorization.k8s.io/v1/SelfSubjectAccessReview": "io.k8s.api.authorization.v1.SelfSubjectAccessReview",
}
PREFIX = "#/$defs/"


def main(wheel, out):
    raw = zipfile.ZipFile(wheel).read(MEMBER)
    defs = json.loads(raw)["$defs"]
    keep, todo = {}, list(KINDS.values())
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep[name] = strip(defs[name], todo)
    doc = {
        "version": VERSION,
        "source": {"member": MEMBER, "sha256": hashlib.sha256(raw).hexdigest()},
        "kinds": KINDS,
        "$defs": dict(sorted(keep.items())),
    }
    with open(out, "w") as f:
        json.dump(doc, f, separators=(",", ":"), sort_keys=True)
        f.write("\n")


def strip(node, todo):
    if isinstance(node, list):
        return [strip(v, todo) for v in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key == "description" and isinstance(value, str):
            continue
        if key == "$ref":
            assert value.startswith(PREFIX), value
            value = value[len(PREFIX):]
            todo.append(value)
        # "properties" maps field names to schemas: a field may itself be called "description".
        if key == "properties":
            result[key] = {k: strip(v, todo) for k, v in value.items()}
        else:
            result[key] = strip(value, todo)
    return result


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
