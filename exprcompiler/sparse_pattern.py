"""`Pattern`: a boolean sparsity pattern as CSR index arrays, NumPy only.

Where it sits: the value sparsity.py computes (a Jacobian's or Hessian's structure)
and coloring.py reads; `to_scipy()` converts at the edge, so SciPy is needed only
by whoever asks for a scipy.sparse matrix.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np


class Pattern(NamedTuple):
    """A boolean sparsity pattern in CSR form: row r holds the sorted column
    indices indices[indptr[r]:indptr[r + 1]]."""
    shape: tuple
    indptr: np.ndarray
    indices: np.ndarray

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def row(self, r: int) -> np.ndarray:
        return self.indices[self.indptr[r]:self.indptr[r + 1]]

    def rows(self) -> list:
        """One array of column indices per row."""
        ip, ix = self.indptr, self.indices
        return [ix[ip[r]:ip[r + 1]] for r in range(self.shape[0])]

    def transpose(self) -> "Pattern":
        m, n = self.shape
        row_of = np.repeat(np.arange(m, dtype=np.int64), np.diff(self.indptr))
        order = np.lexsort((row_of, self.indices))   # by column, then row
        counts = np.bincount(self.indices, minlength=n)
        indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        return Pattern((n, m), indptr, row_of[order])

    def to_dense(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=bool)
        row_of = np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))
        out[row_of, self.indices] = True
        return out

    def to_scipy(self):
        sparse = _scipy_sparse()
        data = np.ones(self.nnz, dtype=bool)
        return sparse.csr_matrix((data, self.indices, self.indptr), shape=self.shape)

    @classmethod
    def from_sets(cls, sets: Sequence, n: int) -> "Pattern":
        """From one iterable of column indices per row."""
        lengths = [len(s) for s in sets]
        indptr = np.zeros(len(sets) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        indices = np.fromiter((c for s in sets for c in sorted(s)), dtype=np.int64, count=int(indptr[-1]))
        return cls((len(sets), n), indptr, indices)

    @classmethod
    def from_dense(cls, mask) -> "Pattern":
        mask = np.asarray(mask, dtype=bool)
        return cls.from_sets([np.flatnonzero(r) for r in mask], mask.shape[1])


def as_pattern(obj) -> Pattern:
    """A Pattern from a Pattern, a scipy.sparse matrix or a dense boolean array."""
    if isinstance(obj, Pattern):
        return obj
    if hasattr(obj, "tocsr"):
        csr = obj.tocsr(copy=True)   # the caller's matrix is left as it is
        csr.eliminate_zeros()
        csr.sort_indices()
        return Pattern(tuple(csr.shape), csr.indptr.astype(np.int64), csr.indices.astype(np.int64))
    return Pattern.from_dense(obj)


def _scipy_sparse():
    try:
        import scipy.sparse as sparse
    except ImportError:
        raise ImportError("sparse Jacobian and Hessian patterns are scipy.sparse matrices: "
                          "install SciPy (pip install scipy, or the 'test' extra)") from None
    return sparse


__all__ = ["Pattern", "as_pattern"]
