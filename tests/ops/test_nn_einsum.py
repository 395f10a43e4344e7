"""Einsum against onnx's reference evaluator (numpy.einsum).

Tolerances: fp32 rtol 1e-4 / atol 1e-4 (GEMM-based), fp64 1e-10, fp16 2e-2. Transposes are exact.
"""

import numpy as np
import pytest

from kaiyuan.runtime.errors import ArgumentError, UnsupportedError

from .conftest import rand
from .onnx_node import check, run_kaiyuan

F32 = {"rtol": 1e-4, "atol": 1e-4}

CASES = [
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhid,bhjd->bhij", [(2, 3, 5, 4), (2, 3, 6, 4)]),      # attention scores: B read transposed
    ("bhij,bhjd->bhid", [(2, 3, 4, 5), (2, 3, 5, 6)]),
    ("ij,jk", [(3, 4), (4, 5)]),                            # implicit output
    ("i,i", [(7,), (7,)]),                                  # dot product: a 0-d result
    ("i,j->ij", [(3,), (4,)]),                              # outer product: K is empty
    ("ij,kj->ik", [(3, 4), (5, 4)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 6)]),      # ellipsis with broadcasting
    ("bid,bjd->bji", [(2, 3, 4), (2, 5, 4)]),               # output in another order: scratch + copy
    ("abc,cd->dba", [(2, 3, 4), (4, 5)]),
    ("ab,ab->", [(3, 4), (3, 4)]),
    ("abc,bcd->ad", [(2, 3, 4), (3, 4, 5)]),                # two contracted letters
    ("bij , bjk -> bik", [(1, 3, 4), (2, 4, 5)]),           # spaces; batch broadcast
    ("ij->ji", [(3, 5)]),                                   # transposes
    ("ijk->kji", [(2, 3, 4)]),
    ("Bij,Bjk->Bik", [(2, 3, 4), (2, 4, 5)]),               # upper-case letters
    ("ab,cd->acbd", [(2, 3), (4, 5)]),                      # M and N interleaved: scratch + copy
]
INTERP_CASES = [0, 1, 4, 13, 16]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_einsum_equations(device, rng, case):
    if device.name == "interp" and case not in INTERP_CASES:
        pytest.skip("cpu only: interp runs a subset")
    eq, shapes = CASES[case]
    check("Einsum", [rng.standard_normal(s).astype(np.float32) for s in shapes], {"equation": eq},
          device=device.name, **F32)


def test_einsum_strided_operands_are_copied_or_read_in_place(device, rng):
    a = rng.standard_normal((2, 6, 4)).astype(np.float32)[:, ::2]           # strided rows: folds
    b = rng.standard_normal((4, 5, 2)).astype(np.float32).transpose(2, 0, 1)  # (2, 4, 5) permuted
    check("Einsum", [a, b], {"equation": "bij,bjk->bik"}, device=device.name, **F32)
    c = rng.standard_normal((3, 4, 5)).astype(np.float32).transpose(1, 0, 2)  # (4, 3, 5): 'ab' does not fold
    check("Einsum", [c, rng.standard_normal((4, 3, 2)).astype(np.float32)], {"equation": "abc,abd->cd"},
          device=device.name, **F32)


@pytest.mark.parametrize("dtype", ["fp64", "fp16"])
def test_einsum_dtypes(rng, dtype):
    tol = 1e-10 if dtype == "fp64" else 2e-2
    a, b = rand(rng, (2, 3, 5), dtype), rand(rng, (2, 4, 5), dtype)
    check("Einsum", [a, b], {"equation": "bid,bjd->bij"}, rtol=tol, atol=tol * 3)
    check("Einsum", [a], {"equation": "bid->dbi"})


@pytest.mark.parametrize("eq, shapes, what", [
    ("ii->i", [(3, 3)], "diagonal"),
    ("ij->i", [(3, 4)], "sums away"),
    ("ij,jk->k", [(3, 4), (4, 5)], "sums away"),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)], "3 operands"),
])
def test_einsum_unsupported(eq, shapes, what):
    with pytest.raises(UnsupportedError, match=what):
        run_kaiyuan("Einsum", [np.zeros(s, np.float32) for s in shapes], {"equation": eq})


def test_einsum_errors():
    z = np.zeros((3, 4), np.float32)
    with pytest.raises(ArgumentError, match="rank"):
        run_kaiyuan("Einsum", [z, z], {"equation": "ijk,jk->i"})
    with pytest.raises(ArgumentError, match="sizes"):
        run_kaiyuan("Einsum", [z, z], {"equation": "ij,jk->ik"})
    with pytest.raises(ArgumentError, match="names one no input has"):
        run_kaiyuan("Einsum", [z], {"equation": "ij->iz"})
    with pytest.raises(UnsupportedError, match="int32"):
        run_kaiyuan("Einsum", [z.astype(np.int32)], {"equation": "ij->ji"})
    with pytest.raises(UnsupportedError, match="equation"):
        run_kaiyuan("Einsum", [z])
