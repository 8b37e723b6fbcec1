"""vlit: vision-language instruction tuning (InstructBLIP, LLaVA-1.5, MiniGPT-v2) in one code base."""

__version__ = "0.1.0"
