"""What the ONNX backend node tests (tests/graph/test_onnx_backend.py) are expected to show.

- `IN_SCOPE`: the ONNX operators issue 4 asks the operator library to cover ("element-wise math
  and logic, activations, reductions, Gather/Scatter/..., quantize/dequantize at least"), spelled
  out as ONNX op types, plus the extras kaiyuan registers anyway (Trilu, OneHot, ...): whatever
  kaiyuan claims to run must pass its cases too. A case belongs to the op of its node; an
  `_expanded` case (the op's function body, many nodes) belongs to the op it expands.
- `NOT_SAME_AT_OLDER_OPSET`: cases written at a newer opset that would mean something else at
  opset 21, beyond what onnx's checker and reference evaluator notice; skipped.
- `EXPECTED_FAILURES`: case name → `Reason`: why the case cannot pass (yet), and the class of the
  error it fails with, so a listed case that starts failing differently is noticed, and one that
  starts passing must be taken off the list (the test then fails).
"""

from __future__ import annotations

from typing import NamedTuple

ELEMENTWISE = frozenset("""
    Abs Neg Add Sub Mul Div Pow Sqrt Exp Log Reciprocal Floor Ceil Round Sign Mod Min Max Sum Mean
    Erf Sin Cos Tan Asin Acos Atan Sinh Cosh Asinh Acosh Atanh Clip IsNaN IsInf
    BitShift BitwiseAnd BitwiseOr BitwiseXor BitwiseNot
    And Or Xor Not Equal Less LessOrEqual Greater GreaterOrEqual Where
""".split())
ACTIVATIONS = frozenset("""
    Relu LeakyRelu PRelu Elu Selu Celu Sigmoid HardSigmoid HardSwish Softplus Softsign Gelu Mish
    ThresholdedRelu Tanh
""".split())
REDUCTIONS = frozenset("""
    ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum
    ReduceLogSumExp ReduceSumSquare ArgMax ArgMin CumSum TopK
""".split())
MOVEMENT = frozenset("""
    Gather GatherElements GatherND ScatterElements ScatterND Slice Concat Split Pad Tile Expand
    Shape Reshape Squeeze Unsqueeze Transpose Flatten Identity Size Constant ConstantOfShape
    DepthToSpace SpaceToDepth Trilu OneHot NonZero Range Resize Cast CastLike
""".split())
NN = frozenset("""
    MatMul Gemm Conv ConvTranspose AveragePool MaxPool LpPool GlobalAveragePool GlobalMaxPool
    BatchNormalization LayerNormalization InstanceNormalization GroupNormalization LpNormalization
    MeanVarianceNormalization LRN Softmax LogSoftmax Hardmax Einsum Attention
    QuantizeLinear DequantizeLinear MatMulInteger
""".split())
IN_SCOPE = ELEMENTWISE | ACTIVATIONS | REDUCTIONS | MOVEMENT | NN


class Reason(NamedTuple):
    """Why a case fails, and the class name of the error it fails with ("AssertionError": the
    outputs differ from onnx's)."""

    error: str
    why: str


# Re-stamped cases whose meaning does change at opset 21 although onnx's checker and reference
# evaluator accept them (test_onnx_backend.prepare skips these).
_MOD_FMOD0 = "Mod with fmod=0 on floats exists from opset 28; Mod-13 allows fmod=0 for integers only"
NOT_SAME_AT_OLDER_OPSET: dict[str, str] = {
    f"test_mod_{c}": _MOD_FMOD0 for c in (
        "float16_mixed_sign_fmod_0", "float32_mixed_sign_fmod_0", "float64_mixed_sign_fmod_0",
        "float_edge_cases_fmod_0_float16", "float_edge_cases_fmod_0_float32", "float_edge_cases_fmod_0_float64")
}

_UNSUPPORTED = "UnsupportedError"

LOW_BIT = Reason(_UNSUPPORTED, "float8 (e4m3fn, e4m3fnuz, e5m2, e5m2fnuz) and 4-bit integer element types are not "
                               "supported: kaiyuan's tensors have no such dtype")
STRINGS = Reason(_UNSUPPORTED, "string tensors are not supported (no kernel can hold them)")
NOT_TENSORS = Reason(_UNSUPPORTED, "sequence and optional values are not supported: graphs hold tensors only")
VALUE_SHAPED = Reason(_UNSUPPORTED, "NonZero's output shape depends on its input's values; kaiyuan plans every "
                                    "shape before running")
TRAINING = Reason(_UNSUPPORTED, "BatchNormalization training_mode=1 (batch statistics, running-stat outputs) is "
                                "training; kaiyuan runs inference")

_LOW_BIT_CASES = (
    "test_cast_FLOAT16_to_FLOAT8E4M3FN", "test_cast_FLOAT16_to_FLOAT8E4M3FNUZ",
    "test_cast_FLOAT16_to_FLOAT8E5M2", "test_cast_FLOAT16_to_FLOAT8E5M2FNUZ", "test_cast_FLOAT16_to_INT4",
    "test_cast_FLOAT16_to_UINT4", "test_cast_FLOAT8E4M3FNUZ_to_FLOAT",
    "test_cast_FLOAT8E4M3FNUZ_to_FLOAT16", "test_cast_FLOAT8E4M3FN_to_FLOAT",
    "test_cast_FLOAT8E4M3FN_to_FLOAT16", "test_cast_FLOAT8E5M2FNUZ_to_FLOAT",
    "test_cast_FLOAT8E5M2FNUZ_to_FLOAT16", "test_cast_FLOAT8E5M2_to_FLOAT",
    "test_cast_FLOAT8E5M2_to_FLOAT16", "test_cast_FLOAT_to_FLOAT8E4M3FN",
    "test_cast_FLOAT_to_FLOAT8E4M3FNUZ", "test_cast_FLOAT_to_FLOAT8E5M2",
    "test_cast_FLOAT_to_FLOAT8E5M2FNUZ", "test_cast_FLOAT_to_INT4", "test_cast_FLOAT_to_UINT4",
    "test_cast_INT4_to_FLOAT", "test_cast_INT4_to_FLOAT16", "test_cast_INT4_to_INT8",
    "test_cast_UINT4_to_FLOAT", "test_cast_UINT4_to_FLOAT16", "test_cast_UINT4_to_UINT8",
    "test_cast_no_saturate_FLOAT16_to_FLOAT8E4M3FN", "test_cast_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ",
    "test_cast_no_saturate_FLOAT16_to_FLOAT8E5M2", "test_cast_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ",
    "test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FN", "test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ",
    "test_cast_no_saturate_FLOAT_to_FLOAT8E5M2", "test_cast_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ",
    "test_castlike_FLOAT16_to_FLOAT8E4M3FN", "test_castlike_FLOAT16_to_FLOAT8E4M3FNUZ",
    "test_castlike_FLOAT16_to_FLOAT8E4M3FNUZ_expanded", "test_castlike_FLOAT16_to_FLOAT8E4M3FN_expanded",
    "test_castlike_FLOAT16_to_FLOAT8E5M2", "test_castlike_FLOAT16_to_FLOAT8E5M2FNUZ",
    "test_castlike_FLOAT16_to_FLOAT8E5M2FNUZ_expanded", "test_castlike_FLOAT16_to_FLOAT8E5M2_expanded",
    "test_castlike_FLOAT16_to_INT4", "test_castlike_FLOAT16_to_INT4_expanded",
    "test_castlike_FLOAT16_to_UINT4", "test_castlike_FLOAT16_to_UINT4_expanded",
    "test_castlike_FLOAT8E4M3FNUZ_to_FLOAT", "test_castlike_FLOAT8E4M3FNUZ_to_FLOAT16",
    "test_castlike_FLOAT8E4M3FNUZ_to_FLOAT16_expanded", "test_castlike_FLOAT8E4M3FNUZ_to_FLOAT_expanded",
    "test_castlike_FLOAT8E4M3FN_to_FLOAT", "test_castlike_FLOAT8E4M3FN_to_FLOAT16",
    "test_castlike_FLOAT8E4M3FN_to_FLOAT16_expanded", "test_castlike_FLOAT8E4M3FN_to_FLOAT_expanded",
    "test_castlike_FLOAT8E5M2FNUZ_to_FLOAT", "test_castlike_FLOAT8E5M2FNUZ_to_FLOAT16",
    "test_castlike_FLOAT8E5M2FNUZ_to_FLOAT16_expanded", "test_castlike_FLOAT8E5M2FNUZ_to_FLOAT_expanded",
    "test_castlike_FLOAT8E5M2_to_FLOAT", "test_castlike_FLOAT8E5M2_to_FLOAT16",
    "test_castlike_FLOAT8E5M2_to_FLOAT16_expanded", "test_castlike_FLOAT8E5M2_to_FLOAT_expanded",
    "test_castlike_FLOAT_to_FLOAT8E4M3FN", "test_castlike_FLOAT_to_FLOAT8E4M3FNUZ",
    "test_castlike_FLOAT_to_FLOAT8E4M3FNUZ_expanded", "test_castlike_FLOAT_to_FLOAT8E4M3FN_expanded",
    "test_castlike_FLOAT_to_FLOAT8E5M2", "test_castlike_FLOAT_to_FLOAT8E5M2FNUZ",
    "test_castlike_FLOAT_to_FLOAT8E5M2FNUZ_expanded", "test_castlike_FLOAT_to_FLOAT8E5M2_expanded",
    "test_castlike_FLOAT_to_INT4", "test_castlike_FLOAT_to_INT4_expanded", "test_castlike_FLOAT_to_UINT4",
    "test_castlike_FLOAT_to_UINT4_expanded", "test_castlike_INT4_to_FLOAT", "test_castlike_INT4_to_FLOAT16",
    "test_castlike_INT4_to_FLOAT16_expanded", "test_castlike_INT4_to_FLOAT_expanded",
    "test_castlike_INT4_to_INT8", "test_castlike_INT4_to_INT8_expanded", "test_castlike_UINT4_to_FLOAT",
    "test_castlike_UINT4_to_FLOAT16", "test_castlike_UINT4_to_FLOAT16_expanded",
    "test_castlike_UINT4_to_FLOAT_expanded", "test_castlike_UINT4_to_UINT8",
    "test_castlike_UINT4_to_UINT8_expanded", "test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FN",
    "test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ",
    "test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ_expanded",
    "test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FN_expanded",
    "test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2",
    "test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ",
    "test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ_expanded",
    "test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2_expanded",
    "test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FN", "test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ",
    "test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ_expanded",
    "test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FN_expanded",
    "test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2", "test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ",
    "test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ_expanded",
    "test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2_expanded", "test_dequantizelinear_e4m3fn",
    "test_dequantizelinear_e4m3fn_float16", "test_dequantizelinear_e4m3fn_zero_point",
    "test_dequantizelinear_e5m2", "test_dequantizelinear_int4", "test_dequantizelinear_uint4",
    "test_quantizelinear_e4m3fn", "test_quantizelinear_e5m2", "test_quantizelinear_int4",
    "test_quantizelinear_uint4"
)

THREE_D = Reason(_UNSUPPORTED, "3-D convolution and pooling are not implemented (1-D and 2-D are)")
RESIZE_MODES = Reason(_UNSUPPORTED, "Resize: cubic mode, antialias=1 and tf_crop_and_resize are not implemented "
                                    "(nearest and linear are)")
EINSUM_FORMS = Reason(_UNSUPPORTED, "Einsum: diagonals (a repeated letter) and sums over one operand's letters are "
                                    "not implemented (contractions that are one batched matmul are)")

EXPECTED_FAILURES: dict[str, Reason] = {
    **dict.fromkeys((
        "test_averagepool_3d_default",
        "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_False",
        "test_averagepool_3d_dilations_large_count_include_pad_is_0_ceil_mode_is_True",
        "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_False",
        "test_averagepool_3d_dilations_large_count_include_pad_is_1_ceil_mode_is_True",
        "test_averagepool_3d_dilations_small", "test_convtranspose_3d", "test_lppool_3d_default",
        "test_maxpool_3d_default", "test_maxpool_3d_dilations", "test_maxpool_3d_dilations_use_ref_impl",
        "test_maxpool_3d_dilations_use_ref_impl_large",
    ), THREE_D),
    **dict.fromkeys((
        "test_resize_downsample_scales_cubic", "test_resize_downsample_scales_cubic_A_n0p5_exclude_outside",
        "test_resize_downsample_scales_cubic_align_corners",
        "test_resize_downsample_scales_cubic_antialias", "test_resize_downsample_scales_linear_antialias",
        "test_resize_downsample_sizes_cubic", "test_resize_downsample_sizes_cubic_antialias",
        "test_resize_downsample_sizes_linear_antialias", "test_resize_tf_crop_and_resize",
        "test_resize_tf_crop_and_resize_axes_2_3", "test_resize_tf_crop_and_resize_axes_3_2",
        "test_resize_tf_crop_and_resize_extrapolation_value", "test_resize_upsample_scales_cubic",
        "test_resize_upsample_scales_cubic_A_n0p5_exclude_outside",
        "test_resize_upsample_scales_cubic_align_corners", "test_resize_upsample_scales_cubic_asymmetric",
        "test_resize_upsample_sizes_cubic",
    ), RESIZE_MODES),
    "test_einsum_batch_diagonal": EINSUM_FORMS,
    "test_einsum_sum": EINSUM_FORMS,
    **dict.fromkeys(_LOW_BIT_CASES, LOW_BIT),
    "test_equal_string": STRINGS,
    "test_equal_string_broadcast": STRINGS,
    "test_identity_opt": NOT_TENSORS,
    "test_identity_sequence": NOT_TENSORS,
    "test_nonzero_example": VALUE_SHAPED,
    "test_batchnorm_epsilon_training_mode": TRAINING,
    "test_batchnorm_example_training_mode": TRAINING,
}
