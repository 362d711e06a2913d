"""Reciprocal rank fusion, plain and weighted."""
import pytest

from tools.retrieval.fusion import reciprocal_rank_fusion


def test_plain_rrf_scores_are_sums_of_reciprocal_ranks():
    fused = dict(reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]], k=60))
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61) and fused["d"] == pytest.approx(1 / 62)
    assert [item for item, _ in reciprocal_rank_fusion([["a", "b", "c"], ["b", "d"]])][:2] == ["b", "a"]


def test_weights_scale_each_ranking():
    rankings = [["vec1", "v2", "v3", "v4", "both"], ["kw1", "k2", "k3", "k4", "both"]]
    plain = [item for item, _ in reciprocal_rank_fusion(rankings, k=10)]
    assert plain[0] == "both"
    weighted = reciprocal_rank_fusion(rankings, k=10, weights=(0.25, 1.0))
    assert weighted[0][0] == "kw1" and dict(weighted)["vec1"] == pytest.approx(0.25 / 11)


def test_a_weight_per_ranking_is_required():
    with pytest.raises(ValueError, match="2 rankings but 1 weights"):
        reciprocal_rank_fusion([["a"], ["b"]], weights=(1.0,))
