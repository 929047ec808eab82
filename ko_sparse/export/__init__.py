"""From a trained model to OpenSearch ML-Commons artifacts (TorchScript zip, tokenizer model)."""
