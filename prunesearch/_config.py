"""The pruning config: per layer, how many query heads and FFN channels are kept.

The JSON form is what users write by hand and every command reads::

    {"layers": [{"heads": 12, "ffn": 1536}, {"heads": 6, "ffn": 768}, ...]}

A zero removes that block; both zero remove the whole layer.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, NonNegativeInt, ValidationError

from prunesearch.errors import ConfigError


class LayerConfig(BaseModel):
    """Kept sizes of one transformer layer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    heads: NonNegativeInt
    ffn: NonNegativeInt


class Config(BaseModel):
    """Kept sizes of every layer, in model order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    layers: tuple[LayerConfig, ...]

    @classmethod
    def uniform(cls, n_layers: int, *, heads: int, ffn: int) -> Config:
        return cls.from_dict({"layers": [{"heads": heads, "ffn": ffn}] * n_layers})

    @classmethod
    def from_dict(cls, data: object, *, source: str = "config") -> Config:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = _where(first["loc"])
            raise ConfigError(
                f'{source}: {where}: {first["msg"]} (expected {{"layers": [{{"heads": <int>, "ffn": <int>}}, ...]}})'
            ) from None

    @classmethod
    def load(cls, path: str | Path) -> Config:
        path = Path(path)
        try:
            text = path.read_text()
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        return cls.from_dict(data, source=str(path))

    def with_layer(self, index: int, *, heads: int, ffn: int) -> Config:
        """This config with layer ``index`` set to ``heads`` / ``ffn``."""
        layers = list(self.layers)
        layers[index] = LayerConfig(heads=heads, ffn=ffn)
        return Config(layers=tuple(layers))

    def to_dict(self) -> dict:
        return {"layers": [{"heads": l.heads, "ffn": l.ffn} for l in self.layers]}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @property
    def heads(self) -> list[int]:
        return [l.heads for l in self.layers]

    @property
    def ffn(self) -> list[int]:
        return [l.ffn for l in self.layers]

    def __str__(self) -> str:
        return " ".join(f"{l.heads}/{l.ffn}" for l in self.layers)


def _where(loc: tuple) -> str:
    """("layers", 3, "heads") -> "layer 3: heads"."""
    if len(loc) >= 2 and loc[0] == "layers" and isinstance(loc[1], int):
        return f"layer {loc[1]}" + "".join(f": {p}" for p in loc[2:])
    return ".".join(str(p) for p in loc) or "top level"
