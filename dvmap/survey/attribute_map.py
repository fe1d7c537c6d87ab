"""The attribute mapping: which WVS variables give each profile attribute, and how codes become labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .. import NOT_ANSWERED
from .countries import country_name
from ..errors import DvmapError

DEFAULT_ATTRIBUTE_MAP = resources.files("dvmap") / "data" / "attributes.yaml"
KINDS = ("labels", "bins", "country")


@dataclass(frozen=True)
class Source:
    var: str
    labels: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AttributeRule:
    """How one attribute is derived: the first ``sources`` variable with data, decoded according to ``kind``."""

    name: str
    kind: str
    sources: tuple[Source, ...]
    bins: tuple[tuple[float | None, float | None, str], ...] = ()

    def decode(self, values: pd.Series, source: Source, file_labels: dict, where: str) -> np.ndarray:
        """Turn raw values into labels; missing values become "Not Answered"; unknown codes are errors."""
        missing = values.isna().to_numpy()
        present = values[~missing]
        out = np.full(len(values), NOT_ANSWERED, dtype=object)
        if self.kind == "bins":
            out[~missing] = [self._bin(v, where) for v in present.astype(float)]
        elif self.kind == "country":
            lookup = {c: country_name(c) for c in present.unique()}
            unknown = sorted(str(c) for c, name in lookup.items() if name is None)
            if unknown:
                raise DvmapError(f"{where}: unknown country codes {unknown[:5]} (see dvmap/data/countries.tsv)")
            out[~missing] = present.map(lookup).to_numpy()
        elif pd.api.types.is_numeric_dtype(present):
            labels = {**{float(k): v for k, v in file_labels.items()}, **{float(k): v for k, v in source.labels.items()}}
            codes = present.astype(float)
            unlabelled = sorted(set(codes.unique()) - set(labels))
            if unlabelled:
                shown = [int(c) if float(c).is_integer() else c for c in unlabelled[:5]]
                raise DvmapError(f"{where}: codes {shown} have no label (add them to the attribute map's labels)")
            out[~missing] = codes.map(labels).to_numpy()
        else:
            out[~missing] = present.astype(str).to_numpy()
        return out

    def _bin(self, value: float, where: str) -> str:
        for low, high, label in self.bins:
            if (low is None or value >= low) and (high is None or value <= high):
                return label
        raise DvmapError(f"{where}: value {value:g} falls in no bin of {self.name!r}")


def load_attribute_map(path: str | Path | None = None) -> dict[str, AttributeRule]:
    """Load and check an attribute map file (the packaged DVMap defaults when ``path`` is None)."""
    source = Path(path) if path else DEFAULT_ATTRIBUTE_MAP
    try:
        entries = yaml.safe_load(source.read_text(encoding="utf-8"))["attributes"]
        return {str(name): _rule(str(name), spec) for name, spec in entries.items()}
    except (OSError, yaml.YAMLError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise DvmapError(f"{source}: invalid attribute map ({exc})") from exc


def _rule(name: str, spec: dict) -> AttributeRule:
    kind = spec.get("kind", "labels")
    if kind not in KINDS:
        raise ValueError(f"attributes.{name}.kind must be one of {KINDS}, not {kind!r}")
    sources = tuple(
        Source(s) if isinstance(s, str) else Source(str(s["var"]), {int(k): str(v) for k, v in s.get("labels", {}).items()})
        for s in spec["source"]
    )
    if not sources:
        raise ValueError(f"attributes.{name}.source is empty")
    bins = tuple((lo, hi, str(label)) for lo, hi, label in spec.get("bins", []))
    if kind == "bins" and not bins:
        raise ValueError(f"attributes.{name} has kind 'bins' but no bins")
    return AttributeRule(name, kind, sources, bins)
