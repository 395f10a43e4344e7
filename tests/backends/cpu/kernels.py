"""Hand-written `ky` IR kernels shared by the cpu tests and the benchmark script."""

VECADD = """builtin.module attributes {ky.version = "0.1"} {
  func.func @vadd(%x: !ky.ptr<f32>, %y: !ky.ptr<f32>, %z: !ky.ptr<f32>, %n: i32) {
    %pid = "ky.program_id"() <{axis = 0 : i32}> : () -> i32
    %r = "ky.make_range"() <{start = 0 : i32, end = BLOCK : i32}> : () -> tensor<BLOCKxi32>
    %c = arith.constant BLOCK : i32
    %b = arith.muli %pid, %c : i32
    %bs = "ky.splat"(%b) : (i32) -> tensor<BLOCKxi32>
    %o = arith.addi %bs, %r : tensor<BLOCKxi32>
    %ns = "ky.splat"(%n) : (i32) -> tensor<BLOCKxi32>
    %m = arith.cmpi slt, %o, %ns : tensor<BLOCKxi32>
    %xp = "ky.splat"(%x) : (!ky.ptr<f32>) -> tensor<BLOCKx!ky.ptr<f32>>
    %xs = "ky.addptr"(%xp, %o) : (tensor<BLOCKx!ky.ptr<f32>>, tensor<BLOCKxi32>) -> tensor<BLOCKx!ky.ptr<f32>>
    %xv = "ky.load"(%xs, %m) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<BLOCKx!ky.ptr<f32>>, tensor<BLOCKxi1>) -> tensor<BLOCKxf32>
    %yp = "ky.splat"(%y) : (!ky.ptr<f32>) -> tensor<BLOCKx!ky.ptr<f32>>
    %ys = "ky.addptr"(%yp, %o) : (tensor<BLOCKx!ky.ptr<f32>>, tensor<BLOCKxi32>) -> tensor<BLOCKx!ky.ptr<f32>>
    %yv = "ky.load"(%ys, %m) <{operandSegmentSizes = array<i32: 1, 1, 0>}> : (tensor<BLOCKx!ky.ptr<f32>>, tensor<BLOCKxi1>) -> tensor<BLOCKxf32>
    %s = arith.addf %xv, %yv : tensor<BLOCKxf32>
    %zp = "ky.splat"(%z) : (!ky.ptr<f32>) -> tensor<BLOCKx!ky.ptr<f32>>
    %zs = "ky.addptr"(%zp, %o) : (tensor<BLOCKx!ky.ptr<f32>>, tensor<BLOCKxi32>) -> tensor<BLOCKx!ky.ptr<f32>>
    "ky.store"(%zs, %s, %m) <{operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<BLOCKx!ky.ptr<f32>>, tensor<BLOCKxf32>, tensor<BLOCKxi1>) -> ()
    func.return
  }
}
"""

SOFTMAX = """builtin.module attributes {ky.version = "0.1"} {
  func.func @softmax(%x: !ky.ptr<f32>, %y: !ky.ptr<f32>, %ncols: i32, %stride: i32) {
    %row = "ky.program_id"() <{axis = 0 : i32}> : () -> i32
    %cols = "ky.make_range"() <{start = 0 : i32, end = BLOCK : i32}> : () -> tensor<BLOCKxi32>
    %nc = "ky.splat"(%ncols) : (i32) -> tensor<BLOCKxi32>
    %mask = arith.cmpi slt, %cols, %nc : tensor<BLOCKxi32>
    %base = arith.muli %row, %stride : i32
    %xrow = "ky.addptr"(%x, %base) : (!ky.ptr<f32>, i32) -> !ky.ptr<f32>
    %xps = "ky.splat"(%xrow) : (!ky.ptr<f32>) -> tensor<BLOCKx!ky.ptr<f32>>
    %xp = "ky.addptr"(%xps, %cols) : (tensor<BLOCKx!ky.ptr<f32>>, tensor<BLOCKxi32>) -> tensor<BLOCKx!ky.ptr<f32>>
    %ninf = arith.constant 0xFF800000 : f32
    %other = "ky.splat"(%ninf) : (f32) -> tensor<BLOCKxf32>
    %xv = "ky.load"(%xp, %mask, %other) <{operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<BLOCKx!ky.ptr<f32>>, tensor<BLOCKxi1>, tensor<BLOCKxf32>) -> tensor<BLOCKxf32>
    %mx = "ky.reduce"(%xv) <{axis = 0 : i32}> ({
    ^bb0(%a: f32, %b: f32):
      %z = arith.maximumf %a, %b : f32
      "ky.yield"(%z) : (f32) -> ()
    }) : (tensor<BLOCKxf32>) -> f32
    %mxs = "ky.splat"(%mx) : (f32) -> tensor<BLOCKxf32>
    %sh = arith.subf %xv, %mxs : tensor<BLOCKxf32>
    %e = math.exp %sh : tensor<BLOCKxf32>
    %sm = "ky.reduce"(%e) <{axis = 0 : i32}> ({
    ^bb0(%a: f32, %b: f32):
      %z = arith.addf %a, %b : f32
      "ky.yield"(%z) : (f32) -> ()
    }) : (tensor<BLOCKxf32>) -> f32
    %sms = "ky.splat"(%sm) : (f32) -> tensor<BLOCKxf32>
    %out = arith.divf %e, %sms : tensor<BLOCKxf32>
    %yrow = "ky.addptr"(%y, %base) : (!ky.ptr<f32>, i32) -> !ky.ptr<f32>
    %yps = "ky.splat"(%yrow) : (!ky.ptr<f32>) -> tensor<BLOCKx!ky.ptr<f32>>
    %yp = "ky.addptr"(%yps, %cols) : (tensor<BLOCKx!ky.ptr<f32>>, tensor<BLOCKxi32>) -> tensor<BLOCKx!ky.ptr<f32>>
    "ky.store"(%yp, %out, %mask) <{operandSegmentSizes = array<i32: 1, 1, 1>}> : (tensor<BLOCKx!ky.ptr<f32>>, tensor<BLOCKxf32>, tensor<BLOCKxi1>) -> ()
    func.return
  }
}
"""


def sized(text: str, block: int) -> str:
    return text.replace("BLOCK", str(block))
