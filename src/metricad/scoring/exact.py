"""Float64 linear algebra whose bytes depend neither on the CPU's vendor nor on the batch.

BLAS and LAPACK (MKL in the PyTorch wheels, OpenBLAS in numpy and scipy) pick their float64
kernels by the CPU they find (other code on AMD than on Intel, whatever MKL_CBWR or
OPENBLAS_CORETYPE say) and by the shapes they are given (a row's result moves with the number
of rows beside it). Here every dot product is an elementwise product, exact in IEEE
arithmetic, summed by ATen's own reduction, which is pinned to AVX2 (numerics.py) and adds the
terms of one row in the same order whatever else is in the batch; the inverse is Gauss-Jordan
elimination, elementwise updates only.
"""

from __future__ import annotations

import torch

# Columns of `right` per step: bounds the (N, COLUMNS, D) float64 intermediate. A constant,
# so the loop is the same for every batch (and unrolls statically in the ONNX export).
COLUMNS = 64


def row_dots(left: torch.Tensor, right: torch.Tensor, columns: int = COLUMNS) -> torch.Tensor:
    """`left @ right.T` for float64 (N, D) and (M, D): every entry the sum over D of the
    products, added in a fixed order; `columns` rows of `right` at a time."""
    pieces = [
        (left.unsqueeze(1) * block.unsqueeze(0)).sum(dim=2) for block in right.split(columns, dim=0)
    ]
    return torch.cat(pieces, dim=1)


def gram(rows: torch.Tensor) -> torch.Tensor:
    """`rows.T @ rows` for float64 (N, D): (D, D), each entry summed over N in a fixed order,
    in column blocks that keep the intermediate near 64 MB whatever N is."""
    count, dims = rows.shape
    columns = max(1, min(dims, (8 << 20) // max(1, count * dims)))
    return row_dots(rows.T.contiguous(), rows.T.contiguous(), columns)


def spd_inverse(matrix: torch.Tensor) -> torch.Tensor:
    """The inverse of a symmetric positive definite float64 matrix by Gauss-Jordan
    elimination without pivoting (the diagonal of an SPD matrix stays positive): each step an
    elementwise rank-1 update, so the bits are the same on every CPU."""
    size = matrix.shape[0]
    work = torch.cat([matrix.to(torch.float64), torch.eye(size, dtype=torch.float64)], dim=1)
    for k in range(size):
        pivot_row = work[k] / work[k, k]
        column = work[:, k].clone()
        column[k] = 0.0
        work -= column.unsqueeze(1) * pivot_row.unsqueeze(0)
        work[k] = pivot_row
    return work[:, size:].clone()
