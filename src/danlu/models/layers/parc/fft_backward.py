"""The FFT form's autograd function, its backward written out (Fast-ParC)."""
import torch


class CircularXCorrFFT(torch.autograd.Function):
    """y = irfft(rfft(x + pe) * conj(rfft(k)), n) + bias along dim, with the adjoint written out.

    Forward: the positional embedding and the bias do not depend on the batch or on the other axis,
    so their part, rfft(pe) * conj(K) plus bias * N in the DC bin (irfft divides by N), is formed once
    at (C, F) size and fused into the product (addcmul) instead of two passes over the full tensor.
    Backward: autograd would differentiate rfft by a full-length complex FFT of a zero-padded
    spectrum. The adjoint needs one rfft of the output gradient (GY) and one irfft; every reduction
    is done on spectra: grad_x = irfft(GY * K); grad_k = irfft(sum over batch and the other axis of
    conj(GY) * (X + P)); grad_pe and grad_bias come from S = GY summed over batch and the other axis
    (grad_pe = irfft(S * K), grad_bias = the real DC bin of S). Not twice differentiable.
    """

    @staticmethod
    def forward(ctx, x, k, pe, bias, groups, dim):
        n = x.shape[dim]
        spec = torch.fft.rfft(k, dim=-1)  # (C_out, C_in/g, F)
        x_f = torch.fft.rfft(x, dim=dim)  # (B, C, F, W) for dim=-2, (B, C, H, F) for dim=-1
        p_f = None if pe is None else torch.fft.rfft(pe, dim=dim)
        offset = None if p_f is None else _mix(p_f, spec.conj(), groups, dim)
        if bias is not None:
            if offset is None:
                offset = torch.zeros(_freq_shape(spec.shape[0], spec.shape[-1], dim), dtype=spec.dtype, device=spec.device)
            offset.select(dim, 0).add_(bias.view(1, -1, 1) * n)
        if _depthwise(x_f, spec, groups):
            k_view = spec.conj().view(_freq_shape(spec.shape[0], spec.shape[-1], dim))
            y_f = x_f * k_view if offset is None else torch.addcmul(offset, x_f, k_view)
        else:
            y_f = _mix(x_f, spec.conj(), groups, dim)
            if offset is not None:
                y_f += offset
        ctx.save_for_backward(x_f, p_f, spec)
        ctx.groups, ctx.dim, ctx.n = groups, dim, n
        return torch.fft.irfft(y_f, n=n, dim=dim)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gy):
        x_f, p_f, spec = ctx.saved_tensors
        groups, dim, n = ctx.groups, ctx.dim, ctx.n
        need_x, need_k, need_pe, need_b = ctx.needs_input_grad[:4]
        other = -1 if dim == -2 else -2  # the axis the kernel does not run along
        c_out, cg, nf = spec.shape
        spec_t = _transpose_groups(spec, groups)
        g_f = torch.fft.rfft(gy, dim=dim)
        gx = gk = gpe = gb = None
        if need_x:
            gx = torch.fft.irfft(_mix(g_f, spec_t, groups, dim), n=n, dim=dim)
        s_g = g_f.sum((0, other), keepdim=True) if (need_pe or need_b or (need_k and p_f is not None)) else None
        if need_pe:
            gpe = torch.fft.irfft(_mix(s_g, spec_t, groups, dim), n=n, dim=dim)
        if need_b:
            gb = s_g.select(dim, 0).real.flatten()
        if need_k:
            if _depthwise(x_f, spec, groups):
                s = torch.linalg.vecdot(g_f, x_f, dim=other).sum(0).view(c_out, 1, nf)  # vecdot conjugates g_f
            else:
                s = torch.einsum("bgofr,bgifr->goif", _grouped(g_f, groups, dim).conj(), _grouped(x_f, groups, dim))
                s = s.reshape(c_out, cg, nf)
            if p_f is not None:  # the embedding's share: P is constant over the reduced axes
                s = s + (s_g.conj().reshape(groups, -1, 1, nf) * p_f.reshape(groups, 1, cg, nf)).reshape(c_out, cg, nf)
            gk = torch.fft.irfft(s, n=n, dim=-1)
        return gx, gk, gpe, gb, None, None


def _depthwise(x_f, spec, groups):
    return groups == x_f.shape[1] == spec.shape[0]


def _freq_shape(c, nf, dim):
    return (1, c, nf, 1) if dim == -2 else (1, c, 1, nf)


def _grouped(t, groups, dim):
    """(B, C, F, R) view of a spectrum (frequency axis second to last) split as (B, groups, C/groups, F, R)."""
    if dim == -1:
        t = t.transpose(-1, -2)
    return t.reshape(t.shape[0], groups, -1, *t.shape[2:])


def _transpose_groups(spec, groups):
    """(C_out, C_in/g, F) -> (C_in, C_out/g, F): the per-group transposed channel mixing (the adjoint)."""
    c_out, cg, nf = spec.shape
    return spec.view(groups, c_out // groups, cg, nf).transpose(1, 2).reshape(groups * cg, c_out // groups, nf)


def _mix(x_f, spec, groups, dim):
    """Grouped channel mixing per frequency: y[b,o,f] = sum_i x[b,i,f] * spec[o,i,f] within each group."""
    c_out, cg, nf = spec.shape
    if _depthwise(x_f, spec, groups):  # one elementwise product
        return x_f * spec.view(_freq_shape(c_out, nf, dim))
    y = torch.einsum("bgifr,goif->bgofr", _grouped(x_f, groups, dim), spec.view(groups, c_out // groups, cg, nf))
    y = y.reshape(x_f.shape[0], c_out, nf, -1)
    return y if dim == -2 else y.transpose(-1, -2)
