#!/usr/bin/env python3
"""Validates otv's consent notifications with an independent FHIR R4 implementation.

Usage: validate_bundle.py FILE...   (FHIR JSON `*.json` or FHIR XML `*.xml`)

Each file must be a FHIR R4 (4.0.1) transaction Bundle that the `fhir.resources` models
(6.1.0, the last release whose default models are R4 4.0.1; later releases default to R4B and
R5) accept: every element known, every cardinality and data type right, every contained
resource valid. XML is read into the FHIR JSON shape by the rules of the FHIR XML format and
then validated by the same models. Exit status 0 when every file is valid; otherwise the
problems are printed per file and the status is 1.
"""

import json
import sys
import xml.etree.ElementTree as ET

import fhir.resources
from fhir.resources.bundle import Bundle

FHIR = "{http://hl7.org/fhir}"
XHTML = "{http://www.w3.org/1999/xhtml}"


def element_to_json(el):
    """One FHIR XML element (not a resource wrapper) as its FHIR JSON value."""
    if "value" in el.attrib and len(el) == 0:
        return el.attrib["value"]
    out = {}
    for k, v in el.attrib.items():
        if k == "url":
            out["url"] = v
        elif k == "value":
            out["value"] = v
    for child in el:
        name = child.tag.replace(FHIR, "")
        if child.tag == XHTML + "div":
            value = ET.tostring(child, encoding="unicode")
            out["div"] = value.replace("ns0:", "").replace(":ns0", "")
            continue
        if name in ("resource",) and len(child) == 1:
            value = resource_to_json(child[0])
        else:
            value = element_to_json(child)
        out.setdefault(name, []).append(value)
    return out


def resource_to_json(el):
    name = el.tag.replace(FHIR, "")
    body = element_to_json(el)
    body["resourceType"] = name
    return body


# Elements that repeat in FHIR R4, among those a notification uses (JSON arrays); every other
# element occurs at most once. `type` repeats in Organization only (Bundle.type and
# Consent.provision.type are single codes).
REPEATING = {"entry", "extension", "coding", "category", "identifier", "actor", "purpose", "profile"}


def flatten(value):
    """Turns the lists of `element_to_json` into single values where FHIR R4 does not repeat."""
    if not isinstance(value, dict):
        return value
    out = {}
    for k, v in value.items():
        if isinstance(v, list):
            items = [flatten(x) for x in v]
            repeats = k in REPEATING or (k == "type" and value.get("resourceType") == "Organization")
            if not repeats and len(items) > 1:
                raise ValueError(f"element {k} occurs {len(items)} times but does not repeat in FHIR R4")
            out[k] = items if repeats else items[0]
        else:
            out[k] = flatten(v)
    return out


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".xml"):
        root = ET.fromstring(data)
        if root.tag != FHIR + "Bundle":
            raise ValueError(f"the root element is {root.tag}, not a FHIR Bundle")
        return flatten(resource_to_json(root))
    return json.loads(data)


def main(paths):
    assert fhir.resources.__fhir_version__ == "4.0.1", fhir.resources.__fhir_version__
    if not paths:
        print(__doc__)
        return 2
    failed = 0
    for path in paths:
        try:
            doc = read(path)
            bundle = Bundle.parse_obj(doc)
            if bundle.type != "transaction":
                raise ValueError(f"Bundle.type is {bundle.type}, not transaction")
            kinds = [e.resource.resource_type for e in bundle.entry]
            if "Patient" not in kinds or "Organization" not in kinds:
                raise ValueError(f"entries {kinds}: a Patient and an Organization are required")
            print(f"{path}: valid FHIR R4 transaction Bundle ({', '.join(kinds)})")
        except Exception as e:  # noqa: BLE001 - every problem is reported per file
            failed += 1
            print(f"{path}: INVALID: {e}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
