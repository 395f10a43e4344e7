"""The main job's model: all-MiniLM-L6-v2 (BERT + mean pooling + normalisation, exported to ONNX
by examples/minilm.py) through kaiyuan.InferenceSession, against onnxruntime on the same file and
sentence-transformers' own embeddings. Tolerance 1e-4 absolute on unit-norm embeddings (fp32
GEMMs summed in another order)."""

import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

import kaiyuan as ky

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
minilm = pytest.importorskip("minilm")


@pytest.fixture(scope="module")
def model_path():
    return minilm.export_onnx()


def test_minilm_matches_onnxruntime_and_sentence_transformers(model_path):
    sess = ky.InferenceSession(str(model_path))
    ref = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == list(minilm.INPUTS)
    assert sess.get_inputs()[0].shape == ["batch", "sequence"]
    for sentences in (minilm.SENTENCES, minilm.SENTENCES[1:3]):
        feeds = minilm.tokenize(sentences)
        [got], [want] = sess.run(None, feeds), ref.run(None, feeds)
        assert got.shape == (len(sentences), 384)
        np.testing.assert_allclose(got, want, atol=1e-4)
    emb = minilm.embed(sess, minilm.SENTENCES)
    st = minilm.reference_embeddings(minilm.SENTENCES)
    np.testing.assert_allclose(emb @ emb.T, st @ st.T, atol=1e-4)
    steps = sess.plan_for({k: v.shape for k, v in minilm.tokenize(minilm.SENTENCES).items()}).steps
    kinds = [s.op.op_type for s in steps]
    # per layer: one Linear for Q, K and V side by side (sliced as views), the output projection
    # and the two FFN GEMMs
    assert kinds.count("Attention") == 6 and kinds.count("Linear") == 24 and "Slice" not in kinds
