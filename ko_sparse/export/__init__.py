"""From a trained model to OpenSearch ML-Commons artifacts (TorchScript or ONNX zip, tokenizer model)."""
