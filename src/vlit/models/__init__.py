"""The model: VisionEncoder -> Connector -> LLM, composed by VisionLanguageModel."""
