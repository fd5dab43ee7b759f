"""JSON Schemas of the device payloads, generated from the pydantic models (docs/schemas/*.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from ingest.validate import BinPayload, StatusPayload, WeighingPayload
from pisman.settings import PROJECT_ROOT

SCHEMA_DIR = PROJECT_ROOT / "docs" / "schemas"
MODELS: dict[str, type[BaseModel]] = {
    "weighing": WeighingPayload,
    "bin": BinPayload,
    "status": StatusPayload,
}


class _NumbersAreNumbers(GenerateJsonSchema):
    """Decimal fields are JSON numbers on the wire: validation refuses "12.5" (a string)."""

    def decimal_schema(self, schema: core_schema.DecimalSchema) -> JsonSchemaValue:
        """The number alternative of pydantic's number-or-string schema."""
        generated = super().decimal_schema(schema)
        return dict(generated["anyOf"][0]) if "anyOf" in generated else generated


def schema_for(kind: str) -> dict[str, Any]:
    """The JSON Schema of one message kind (a single reading; a payload may also be an array of them)."""
    schema = MODELS[kind].model_json_schema(mode="validation", schema_generator=_NumbersAreNumbers)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"https://pisman.example/schemas/v1/{kind}.json"
    return schema


def render(kind: str) -> str:
    """The schema file's text."""
    return json.dumps(schema_for(kind), indent=2, sort_keys=True) + "\n"


def write_all(folder: Path = SCHEMA_DIR) -> list[Path]:
    """Regenerate docs/schemas/<kind>.json."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind in MODELS:
        path = folder / f"{kind}.json"
        path.write_text(render(kind), encoding="utf-8")
        paths.append(path)
    return paths


if __name__ == "__main__":
    for written in write_all():
        print(written)
