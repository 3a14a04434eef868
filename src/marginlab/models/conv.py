"""The zoo's convolution: stride 1, SAME padding, with a faster path for small feature maps.

PyTorch has no oneDNN kernel for float64 convolutions on the CPU; its fallback loops over
the samples of a batch, so a large batch over small maps (digits' 4x4 maps after two
poolings) spends its time in per-sample overhead. There the layer multiplies instead by its
dense (Toeplitz) matrix, one GEMM for the whole batch, built from the kernel by a second
small GEMM so that gradients flow to the kernel as usual. Parameters, state dict and results
(to rounding) are those of :class:`torch.nn.Conv2d`.
"""

from __future__ import annotations

import torch
from torch import nn

# The dense matrix costs H W / (kh kw) times the convolution's multiply-adds (the padded
# border is free in it): it pays for maps at most twice the kernel's area, for batches large
# enough to amortize its construction, and while it stays small (2^22 entries, 32 MB).
_MAX_AREA_OVER_KERNEL = 2
_MIN_BATCH = 64
_MAX_MATRIX_ENTRIES = 2**22


class SameConv2d(nn.Conv2d):
    """A bias-optional ``nn.Conv2d`` with stride 1 and ``padding="same"``.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels in and out.
    kernel : tuple of int
        ``(kh, kw)``.
    bias : bool
        Whether the layer has a bias.
    device, dtype : optional
        Where and in which type to create the parameters.

    Examples
    --------
    >>> import torch
    >>> layer = SameConv2d(8, 16, (3, 3), bias=False).double()
    >>> x = torch.randn(100, 8, 4, 4, dtype=torch.float64)
    >>> reference = torch.nn.functional.conv2d(x, layer.weight, padding="same")
    >>> bool(torch.allclose(layer(x), reference))
    True
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int],
        *,
        bias: bool,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel, padding="same", bias=bias, device=device, dtype=dtype
        )
        self._shift_matrices: dict[tuple[int, int], torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self._dense_pays(x):
            return super().forward(x)
        n, c, h, w = x.shape
        area = h * w
        matrix = (
            (self.weight.reshape(self.out_channels * c, -1) @ self._shifts(h, w))
            .view(self.out_channels, c, area, area)
            .permute(1, 2, 0, 3)
            .reshape(c * area, self.out_channels * area)
        )
        out = (x.reshape(n, c * area) @ matrix).view(n, self.out_channels, h, w)
        return out if self.bias is None else out + self.bias.view(1, -1, 1, 1)

    def _dense_pays(self, x: torch.Tensor) -> bool:
        if x.device.type != "cpu" or x.dtype != torch.float64 or x.dim() != 4:
            return False
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        return (
            n >= _MIN_BATCH
            and h * w <= _MAX_AREA_OVER_KERNEL * kh * kw
            and c * self.out_channels * (h * w) ** 2 <= _MAX_MATRIX_ENTRIES
        )

    def _shifts(self, h: int, w: int) -> torch.Tensor:
        """``(kh kw, h w h w)``: entry ``((a, b), (r, s), (i, j))`` is 1 where input pixel
        ``(r, s)`` meets kernel tap ``(a, b)`` for output pixel ``(i, j)``."""
        if (h, w) not in self._shift_matrices:
            kh, kw = self.kernel_size
            a = torch.arange(kh).view(kh, 1, 1, 1, 1, 1)
            b = torch.arange(kw).view(1, kw, 1, 1, 1, 1)
            r = torch.arange(h).view(1, 1, h, 1, 1, 1)
            s = torch.arange(w).view(1, 1, 1, w, 1, 1)
            i = torch.arange(h).view(1, 1, 1, 1, h, 1)
            j = torch.arange(w).view(1, 1, 1, 1, 1, w)
            # "same" pads (k - 1) // 2 before and the rest after, as torch does
            hits = (r == i + a - (kh - 1) // 2) & (s == j + b - (kw - 1) // 2)
            self._shift_matrices[h, w] = hits.double().reshape(kh * kw, (h * w) ** 2)
        return self._shift_matrices[h, w]
