"""The fused decoder + max-pool gives the plain form's values and gradients."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ko_sparse.model.encode import splade_forward
from ko_sparse.model.max_pooled_decoder import MaxPooledDecoder, max_pooled_logits
from ko_sparse.model.splade import mlm_of, splade_max_pool


def plain(hidden, weight, bias, mask):
    return splade_max_pool(F.linear(hidden, weight, bias), mask)


def fused(hidden, weight, bias, mask):
    return torch.log1p(torch.relu(MaxPooledDecoder.apply(hidden, weight, bias, mask)))


def test_values_and_gradients_equal_the_plain_form():
    torch.manual_seed(0)
    hidden = torch.randn(3, 5, 8, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(40, 8, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(40, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]])
    upstream = torch.randn(3, 40, dtype=torch.float64)
    results = []
    for form in (plain, fused):
        value = form(hidden, weight, bias, mask)
        gradients = torch.autograd.grad((value * upstream).sum(), (hidden, weight, bias))
        results.append((value, gradients))
    (value, gradients), (fused_value, fused_gradients) = results
    torch.testing.assert_close(fused_value, value)
    for ours, theirs in zip(fused_gradients, gradients, strict=True):
        torch.testing.assert_close(ours, theirs)
    assert gradients[0][2, 1:].abs().sum() == 0  # padding positions get no gradient


def test_logits_made_a_few_texts_at_a_time_pool_like_all_at_once():
    torch.manual_seed(2)
    hidden, weight, bias = torch.randn(7, 5, 8), torch.randn(40, 8), torch.randn(40)
    mask = (torch.arange(5) < torch.tensor([5, 4, 3, 2, 1, 5, 3]).unsqueeze(1)).long()
    whole_values, whole_positions = max_pooled_logits(hidden, weight, bias, mask)
    one_text = 5 * 40  # the budget of one text's logits: seven chunks
    values, positions = max_pooled_logits(hidden, weight, bias, mask, budget=one_text)
    torch.testing.assert_close(values, whole_values)
    assert torch.equal(positions, whole_positions)
    assert (positions < mask.sum(1, keepdim=True)).all()  # never a padding position
    three_texts = max_pooled_logits(hidden, weight, bias, mask, budget=3 * one_text)
    torch.testing.assert_close(three_texts[0], whole_values)


def test_gradcheck():
    torch.manual_seed(1)
    hidden = torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    assert torch.autograd.gradcheck(lambda h, w, b: MaxPooledDecoder.apply(h, w, b, mask), (hidden, weight, bias))


def test_splade_forward_trains_like_the_plain_model(tiny_encoder):
    mlm = mlm_of(tiny_encoder).train()
    texts = ["당뇨병 치료", "서울에서 부산까지 기차로 가는 방법"]
    features = tiny_encoder.tokenizer(texts, padding=True, return_tensors="pt")
    ids, mask = features["input_ids"], features["attention_mask"]
    fused_vectors = splade_forward(mlm, ids, mask)
    fused_vectors.sum().backward()
    fused_grads = [p.grad.clone() for p in mlm.parameters()]
    mlm.zero_grad()
    plain_vectors = splade_max_pool(mlm(input_ids=ids, attention_mask=mask).logits, mask)
    plain_vectors.sum().backward()
    torch.testing.assert_close(fused_vectors, plain_vectors)
    for ours, (name, parameter) in zip(fused_grads, mlm.named_parameters(), strict=True):
        torch.testing.assert_close(ours, parameter.grad, rtol=1e-4, atol=1e-6, msg=name)
    assert isinstance(mlm.get_output_embeddings(), torch.nn.Linear)  # the decoder is back in place


def test_bf16_autocast_matches_the_plain_form_and_keeps_fp32_gradients():
    torch.manual_seed(2)
    hidden = torch.randn(2, 6, 16, requires_grad=True)
    weight = torch.randn(50, 16, requires_grad=True)
    bias = torch.randn(50, requires_grad=True)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 0, 0, 0]])
    results = []
    for form in (plain, fused):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            value = form(hidden, weight, bias, mask)
        gradients = torch.autograd.grad(value.float().sum(), (hidden, weight, bias))
        results.append((value, gradients))
    (value, gradients), (fused_value, fused_gradients) = results
    assert fused_value.dtype == value.dtype == torch.bfloat16
    torch.testing.assert_close(fused_value, value)
    for ours, theirs in zip(fused_gradients, gradients, strict=True):
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours, theirs, rtol=2e-2, atol=2e-2)


def test_the_training_time_fusion_equals_the_library_forward_and_leaves_a_plain_model(tiny_encoder, tmp_path):
    from sentence_transformers import SparseEncoder

    from ko_sparse.model.max_pooled_decoder import fused_max_pooling

    texts = ["당뇨병 치료", "서울에서 부산까지 기차로 가는 방법"]
    features = tiny_encoder.tokenize(texts)
    tiny_encoder.train()
    library = tiny_encoder(dict(features))["sentence_embedding"]
    library.sum().backward()
    library_grads = {n: p.grad.clone() for n, p in tiny_encoder.named_parameters() if p.grad is not None}
    tiny_encoder.zero_grad()
    with fused_max_pooling(tiny_encoder) as fused:
        vectors = tiny_encoder(dict(features))["sentence_embedding"]
        vectors.sum().backward()
        tiny_encoder.save(str(tmp_path / "saved"))  # what a checkpoint inside training writes
    assert fused
    torch.testing.assert_close(vectors, library, rtol=1e-5, atol=1e-6)
    for name, parameter in tiny_encoder.named_parameters():
        if name in library_grads:
            torch.testing.assert_close(parameter.grad, library_grads[name], rtol=1e-4, atol=1e-6, msg=name)
    assert "forward" not in vars(tiny_encoder[0]) and "forward" not in vars(tiny_encoder[1])  # the hooks are gone
    reloaded = SparseEncoder(str(tmp_path / "saved"), device="cpu")
    assert [type(m).__name__ for m in reloaded] == ["Transformer", "SpladePooling"]
    tiny_encoder.eval()
    torch.testing.assert_close(
        reloaded.encode(texts, convert_to_tensor=True).to_dense(),
        tiny_encoder.encode(texts, convert_to_tensor=True).to_dense(),
    )
