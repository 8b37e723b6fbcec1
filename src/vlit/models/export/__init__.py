"""Export to Hugging Face formats that transformers loads as is, chosen by the connector: `mlp` -> LLaVA-1.5
(`llava`), `qformer` -> InstructBLIP or, not instruction-aware, BLIP-2 (`blip`). MiniGPT-v2's `merge` connector
has no transformers class."""

from __future__ import annotations

from pathlib import Path

from vlit.config import MLPConnectorConfig, QFormerConnectorConfig
from vlit.data.loading.processor import Processor
from vlit.errors import VlitError
from vlit.models.export.blip import blip_config, blip_format, blip_state_dict, export_blip
from vlit.models.export.common import merged_llm
from vlit.models.export.llava import LLAVA, export_llava, llava_config, llava_state_dict
from vlit.models.vlm import VisionLanguageModel


def export_model(model: VisionLanguageModel, processor: Processor, folder: str | Path) -> tuple[Path, str]:
    """Write `model` as the transformers format of its connector; returns the folder and the transformers class
    that loads it (`AutoProcessor` loads its processor)."""
    connector = model.config.connector
    if isinstance(connector, MLPConnectorConfig):
        return export_llava(model, processor, folder), LLAVA
    if isinstance(connector, QFormerConnectorConfig):
        return export_blip(model, processor, folder), blip_format(model)
    raise VlitError(f"export: transformers has no class for a {connector.kind!r} connector model (LLaVA takes "
                    "`mlp`, InstructBLIP and BLIP-2 take `qformer`)")


__all__ = ["blip_config", "blip_state_dict", "export_blip", "export_llava", "export_model", "llava_config",
           "llava_state_dict", "merged_llm"]
