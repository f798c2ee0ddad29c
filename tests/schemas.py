"""Validators for the reference schemas in ../shared/reference."""

import json
import os
import pathlib

import jsonschema
import referencing
import referencing.jsonschema

from .conftest import reference


def oci_validator(folder, schema_file):
    """A validator for an OCI JSON schema whose $refs name sibling files."""
    path = reference(folder, schema_file)
    base = os.path.dirname(path)

    def retrieve(uri):
        name = uri.rsplit("/", 1)[-1]
        with open(os.path.join(base, name)) as f:
            return referencing.Resource.from_contents(
                json.load(f), default_specification=referencing.jsonschema
                .DRAFT4)

    with open(path) as f:
        schema = json.load(f)
    base_uri = pathlib.Path(path).as_uri()
    registry = referencing.Registry(retrieve=retrieve)
    schema.setdefault("$id", base_uri)
    return jsonschema.Draft4Validator(schema, registry=registry)
