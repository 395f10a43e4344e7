"""Pieces shared by the C-family emitters (the cpu backend's C, the SIMT emitter's OpenCL C and
CUDA C): C types of IR types (ctype.py), one lane of an element-wise op as a C expression
(elementwise.py), the fusion plan that groups element-wise ops into loops and decides which
tiles are materialised (fusion.py), and C text helpers (ctext.py)."""
