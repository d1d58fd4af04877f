#!/usr/bin/env python3
"""Kubernetes OpenAPI v2 (swagger.json) + CRD YAML -> kubeconform JSON schemas.

Usage: k8s-json-schemas.py OUT_DIR SWAGGER_JSON [CRD.yaml ...]

Writes OUT_DIR/<kind>[-<group prefix>]-<version>.json, standalone (every
$ref inlined) and strict (objects that list properties reject unknown ones,
as the API server's strict field validation does). Use with
  kubeconform -strict -schema-location 'OUT_DIR/{{ .ResourceKind }}{{ .KindSuffix }}.json'

kubeconform cannot read CRDs itself, and its default schema location is on
the internet; this builds everything from files already on the machine (the
k8s.io/kubernetes module the local cluster is built from, and crds/).
"""
import copy
import json
import os
import sys


def strict(node, root=True):
    """Close objects that list properties, except preserve-unknown-fields."""
    if isinstance(node, dict):
        if ("properties" in node and "additionalProperties" not in node and not root
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for key, value in node.items():
            if key in ("properties", "patternProperties", "definitions"):
                for sub in value.values():
                    strict(sub, root=False)
            elif isinstance(value, (dict, list)):
                strict(value, root=False)
    elif isinstance(node, list):
        for value in node:
            strict(value, root=False)
    return node


def nullable_optional(node):
    """Optional fields may be null: helm renders `key: null`, the API server drops it."""
    if isinstance(node, dict):
        required = set(node.get("required", []))
        for name, sub in (node.get("properties") or {}).items():
            if name not in required and isinstance(sub, dict) and isinstance(sub.get("type"), str):
                sub["type"] = [sub["type"], "null"]
        for value in node.values():
            if isinstance(value, (dict, list)):
                nullable_optional(value)
    elif isinstance(node, list):
        for value in node:
            nullable_optional(value)
    return node


# swagger types these as plain strings; manifests write numbers too.
SPECIAL = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {"oneOf": [{"type": "string"}, {"type": "number"}]},
}


def inline(node, definitions, stack=()):
    if isinstance(node, dict):
        ref = node.get("$ref")  # JSONSchemaProps has a *property* named "$ref"
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            name = ref[len("#/definitions/"):]
            if name in SPECIAL:
                return copy.deepcopy(SPECIAL[name])
            if name in stack:  # recursive type (JSONSchemaProps): accept anything below
                return {}
            out = inline(definitions[name], definitions, stack + (name,))
            return {**out, **{k: v for k, v in node.items() if k != "$ref"}}
        return {k: inline(v, definitions, stack) for k, v in node.items()}
    if isinstance(node, list):
        return [inline(v, definitions, stack) for v in node]
    return node


def filename(kind, group, version):
    if group:
        return f"{kind.lower()}-{group.split('.')[0]}-{version}.json"
    return f"{kind.lower()}-{version}.json"


def write(out, name, schema):
    with open(os.path.join(out, name), "w") as f:
        json.dump(schema, f)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, swagger, crd_files = sys.argv[1], sys.argv[2], sys.argv[3:]
    os.makedirs(out, exist_ok=True)
    with open(swagger) as f:
        definitions = json.load(f)["definitions"]
    count = 0
    for name, definition in definitions.items():
        for gvk in definition.get("x-kubernetes-group-version-kind", []):
            schema = inline(copy.deepcopy(definition), definitions, (name,))
            write(out, filename(gvk["kind"], gvk["group"], gvk["version"]),
                  strict(nullable_optional(schema), root=False))
            count += 1
    if crd_files:
        import yaml
        for path in crd_files:
            with open(path) as f:
                documents = list(yaml.safe_load_all(f))
            for doc in documents:
                if not doc or doc.get("kind") != "CustomResourceDefinition":
                    continue
                spec = doc["spec"]
                for version in spec["versions"]:
                    schema = copy.deepcopy(version["schema"]["openAPIV3Schema"])
                    properties = schema.setdefault("properties", {})  # CRD schemas omit these
                    properties.setdefault("apiVersion", {"type": "string"})
                    properties.setdefault("kind", {"type": "string"})
                    properties.setdefault("metadata", {"type": "object"})
                    write(out, filename(spec["names"]["kind"], spec["group"], version["name"]),
                          strict(nullable_optional(schema), root=False))
                    count += 1
    print(f"{count} schemas written to {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
