"""Fixtures for the element-wise, activation, softmax, reduction, shape and
indexing ops: for each case, its inputs, a fixed projection r, the output and
the gradient of sum(out * r) with respect to every float input.
Run: /usr/bin/python3 tests/reference/gen_ops.py"""
import math

import torch
import torch.nn.functional as F

import fixtures

torch.manual_seed(0)


def rnd(*shape, lo=-2.0, hi=2.0):
    return torch.rand(*shape) * (hi - lo) + lo


def away_from_zero(*shape):
    x = rnd(*shape)
    return x + 0.3 * torch.sign(x)


CASES = {
    "add_bcast": (lambda a, b: a + b, [rnd(2, 3, 4), rnd(3, 1)]),
    "sub_bcast": (lambda a, b: a - b, [rnd(4), rnd(2, 1, 4)]),
    "mul_bcast": (lambda a, b: a * b, [rnd(2, 3, 4), rnd(1)]),
    "div": (lambda a, b: a / b, [rnd(2, 3), away_from_zero(2, 3)]),
    "add_scalar": (lambda x: x + 0.5, [rnd(3, 4)]),
    "mul_scalar": (lambda x: x * -1.5, [rnd(3, 4)]),
    "pow3": (lambda x: x ** 3, [rnd(3, 4)]),
    "pow_half": (lambda x: x ** 0.5, [rnd(3, 4, lo=0.2, hi=3.0)]),
    "neg": (lambda x: -x, [rnd(5)]),
    "exp": (torch.exp, [rnd(3, 4)]),
    "log": (torch.log, [rnd(3, 4, lo=0.2, hi=3.0)]),
    "sqrt": (torch.sqrt, [rnd(3, 4, lo=0.2, hi=3.0)]),
    "abs": (torch.abs, [away_from_zero(3, 4)]),
    "clamp": (lambda x: torch.clamp(x, -0.5, 0.5), [rnd(4, 5)]),
    "relu": (F.relu, [away_from_zero(3, 4)]),
    "leaky_relu": (lambda x: F.leaky_relu(x, 0.1), [away_from_zero(3, 4)]),
    "gelu": (F.gelu, [rnd(3, 4, lo=-4, hi=4)]),
    "gelu_tanh": (lambda x: F.gelu(x, approximate="tanh"), [rnd(3, 4, lo=-4, hi=4)]),
    "quick_gelu": (lambda x: x * torch.sigmoid(1.702 * x), [rnd(3, 4, lo=-4, hi=4)]),
    "silu": (F.silu, [rnd(3, 4, lo=-4, hi=4)]),
    "sigmoid": (torch.sigmoid, [rnd(3, 4, lo=-4, hi=4)]),
    "tanh": (torch.tanh, [rnd(3, 4)]),
    "softmax_last": (lambda x: torch.softmax(x, -1), [rnd(2, 3, 5, lo=-5, hi=5)]),
    "softmax_mid": (lambda x: torch.softmax(x, 1), [rnd(2, 3, 4)]),
    "log_softmax_last": (lambda x: torch.log_softmax(x, -1), [rnd(4, 7, lo=-20, hi=20)]),
    "log_softmax_first": (lambda x: torch.log_softmax(x, 0), [rnd(3, 4)]),
    "masked_fill": (lambda x, m: x.masked_fill(m.bool(), -5.0),
                    [rnd(2, 3, 4), (torch.rand(3, 4) > 0.5).to(torch.int32)]),
    "sum_axis_keep": (lambda x: x.sum(1, keepdim=True), [rnd(2, 3, 4)]),
    "sum_all": (lambda x: x.sum(), [rnd(2, 3, 4)]),
    "mean_last": (lambda x: x.mean(-1), [rnd(2, 3, 4)]),
    "max_axis": (lambda x: x.max(1).values, [rnd(2, 5, 3)]),
    "min_first": (lambda x: x.min(0).values, [rnd(4, 3)]),
    "max_all": (lambda x: x.max(), [rnd(3, 4)]),
    "var_axis": (lambda x: x.var(1), [rnd(2, 5, 3)]),
    "var_all_pop": (lambda x: x.var(unbiased=False), [rnd(3, 4)]),
    "reshape": (lambda x: x.reshape(4, -1), [rnd(2, 3, 4)]),
    "permute": (lambda x: x.permute(2, 0, 1), [rnd(2, 3, 4)]),
    "transpose": (lambda x: x.transpose(0, 2), [rnd(2, 3, 4)]),
    "concat": (lambda a, b, c: torch.cat([a, b, c], 1), [rnd(2, 1, 3), rnd(2, 2, 3), rnd(2, 3, 3)]),
    "slice_step": (lambda x: x[:, :, 1:4:2], [rnd(2, 3, 5)]),
    "pad": (lambda x: F.pad(x, (2, 1, 1, 0), value=0.5), [rnd(2, 3)]),
    "embedding": (lambda w, i: F.embedding(i, w), [rnd(10, 4), torch.tensor([[1, 3, 3], [9, 0, 1]])]),
    "index_select": (lambda x, i: x.index_select(1, i), [rnd(2, 5, 3), torch.tensor([4, 0, 4, 2])]),
    "gather": (lambda x, i: x.gather(1, i), [rnd(3, 4), torch.tensor([[0, 3], [1, 1], [2, 0]])]),
    "scatter_add": (lambda x, i, s: x.scatter_add(0, i, s),
                    [rnd(3, 4), torch.tensor([[0, 1, 2, 0], [2, 2, 1, 0]]), rnd(2, 4)]),
    "l2_normalize": (lambda x: F.normalize(x, dim=-1), [rnd(3, 5)]),
    "cosine_similarity": (lambda a, b: F.cosine_similarity(a, b, dim=-1), [rnd(3, 5), rnd(3, 5)]),
    "matmul": (lambda a, b: a @ b, [rnd(3, 4), rnd(4, 5)]),
    "matmul_ta": (lambda a, b: a.T @ b, [rnd(4, 3), rnd(4, 5)]),
    "matmul_tb": (lambda a, b: a @ b.T, [rnd(3, 4), rnd(5, 4)]),
    "matmul_tab": (lambda a, b: a.T @ b.T, [rnd(4, 3), rnd(5, 4)]),
    "bmm": (lambda a, b: a @ b, [rnd(2, 3, 4), rnd(2, 4, 5)]),
    "bmm_tb": (lambda a, b: a @ b.transpose(-1, -2), [rnd(2, 2, 3, 4), rnd(2, 2, 5, 4)]),
    "bmm_shared_b": (lambda a, b: a @ b, [rnd(2, 3, 4), rnd(4, 5)]),
    "bmm_shared_a_ta": (lambda a, b: a.T @ b, [rnd(4, 3), rnd(2, 4, 5)]),
    "linear": (lambda x, w, b: F.linear(x, w, b), [rnd(2, 3, 4), rnd(5, 4), rnd(5)]),
    "linear_nobias": (lambda x, w: F.linear(x, w), [rnd(3, 4), rnd(5, 4)]),
    "outer": (lambda a, b: torch.einsum("bi,bj->bij", a, b), [rnd(2, 3), rnd(2, 4)]),
    "conv2d": (lambda x, w, b: F.conv2d(x, w, b), [rnd(2, 3, 6, 5), rnd(4, 3, 3, 3), rnd(4)]),
    "conv2d_s2_p1": (lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1),
                     [rnd(2, 2, 7, 6), rnd(3, 2, 3, 3), rnd(3)]),
    "conv2d_dil2_rect": (lambda x, w: F.conv2d(x, w, stride=(1, 2), padding=(2, 1), dilation=2),
                         [rnd(1, 2, 7, 8), rnd(2, 2, 3, 2)]),
    "conv2d_groups2": (lambda x, w, b: F.conv2d(x, w, b, padding=1, groups=2),
                       [rnd(2, 4, 5, 5), rnd(6, 2, 3, 3), rnd(6)]),
    "conv2d_depthwise": (lambda x, w: F.conv2d(x, w, stride=2, padding=1, groups=3),
                         [rnd(2, 3, 6, 6), rnd(3, 1, 3, 3)]),
    "conv1d": (lambda x, w, b: F.conv1d(x, w, b, stride=2, padding=2, dilation=2),
               [rnd(2, 3, 11), rnd(4, 3, 3), rnd(4)]),
    "conv1d_groups": (lambda x, w: F.conv1d(x, w, padding=1, groups=2), [rnd(2, 4, 9), rnd(2, 2, 3)]),
    "conv_transpose2d": (lambda x, w, b: F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
                         [rnd(2, 3, 4, 3), rnd(3, 2, 3, 3), rnd(2)]),
    "conv_transpose2d_groups_dil": (lambda x, w: F.conv_transpose2d(x, w, stride=(2, 1), padding=(0, 1),
                                                                    dilation=(1, 2), groups=2),
                                    [rnd(1, 4, 3, 4), rnd(4, 3, 2, 3)]),
    "conv_transpose1d": (lambda x, w, b: F.conv_transpose1d(x, w, b, stride=3, padding=1, output_padding=2),
                         [rnd(2, 2, 5), rnd(2, 3, 4), rnd(3)]),
    "max_pool2d": (lambda x: F.max_pool2d(x, 2), [rnd(2, 3, 6, 5)]),
    "max_pool2d_s1_p1": (lambda x: F.max_pool2d(x, (3, 2), stride=1, padding=1), [rnd(1, 2, 5, 4)]),
    "max_pool1d": (lambda x: F.max_pool1d(x, 3, stride=2, padding=1), [rnd(2, 3, 9)]),
    "avg_pool2d": (lambda x: F.avg_pool2d(x, 2, stride=2, padding=1), [rnd(2, 2, 5, 6)]),
    "avg_pool1d": (lambda x: F.avg_pool1d(x, 3, stride=2), [rnd(2, 3, 10)]),
    "adaptive_avg_pool2d": (lambda x: F.adaptive_avg_pool2d(x, (3, 2)), [rnd(2, 2, 7, 5)]),
    "adaptive_avg_pool2d_global": (lambda x: F.adaptive_avg_pool2d(x, 1), [rnd(2, 3, 4, 5)]),
    "adaptive_avg_pool1d": (lambda x: F.adaptive_avg_pool1d(x, 4), [rnd(2, 3, 10)]),
    "upsample_bilinear": (lambda x: F.interpolate(x, size=(7, 5), mode="bilinear", align_corners=False),
                          [rnd(2, 2, 3, 4)]),
    "upsample_bilinear_align": (lambda x: F.interpolate(x, size=(5, 9), mode="bilinear", align_corners=True),
                                [rnd(1, 2, 3, 4)]),
    "upsample_bilinear_down": (lambda x: F.interpolate(x, size=(3, 2), mode="bilinear", align_corners=False),
                               [rnd(1, 2, 7, 5)]),
    "layer_norm": (lambda x, w, b: F.layer_norm(x, (5,), w, b, eps=1e-5), [rnd(2, 3, 5), rnd(5), rnd(5)]),
    "layer_norm_plain": (lambda x: F.layer_norm(x, (6,), eps=1e-5), [rnd(4, 6)]),
    "batch_norm_train": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-5),
                         [rnd(4, 3, 2, 3), rnd(3), rnd(3)]),
    "batch_norm_train_2d": (lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True, eps=1e-5),
                            [rnd(6, 4), rnd(4), rnd(4)]),
}



def record(cases, out):
    """Each case's inputs, output, a random upstream gradient r and the inputs' gradients of sum(y * r)."""
    for name, (fn, inputs) in cases.items():
        xs = [x.clone().requires_grad_(x.is_floating_point()) for x in inputs]
        y = fn(*xs)
        r = torch.rand(y.shape) * 2 - 1
        (y * r).sum().backward()
        for k, x in enumerate(xs):
            out[f"{name}.in{k}"] = x.detach() if x.is_floating_point() else x.to(torch.int64)
            if x.is_floating_point():
                out[f"{name}.grad{k}"] = x.grad
        out[f"{name}.r"] = r
        out[f"{name}.out"] = y.detach()


out = {}
record(CASES, out)

x = rnd(3, 5)
out["argmax.in0"] = x
out["argmax.out"] = x.argmax(1).to(torch.int64)
# Batch norm running statistics after two training steps, then evaluation.
bn = torch.nn.BatchNorm2d(3, momentum=0.1)
with torch.no_grad():
    bn.weight.copy_(rnd(3))
    bn.bias.copy_(rnd(3))
out["bn_running.weight"], out["bn_running.bias"] = bn.weight.detach().clone(), bn.bias.detach().clone()
for step in range(2):
    x = rnd(4, 3, 2, 2)
    out[f"bn_running.x{step}"] = x
    bn(x)
out["bn_running.mean"], out["bn_running.var"] = bn.running_mean.clone(), bn.running_var.clone()
bn.eval()
x = rnd(2, 3, 2, 2).requires_grad_(True)
y = bn(x)
r = torch.rand(y.shape)
(y * r).sum().backward()
out["bn_running.eval_x"], out["bn_running.eval_out"] = x.detach(), y.detach()
out["bn_running.eval_r"], out["bn_running.eval_grad"] = r, x.grad


# Fused multi-head attention (mml_attention), on its own seed so the cases
# above keep their values: heads are column blocks of q, k, v.
def attention(q, k, v, heads, offs, E, pad=None, causal=None):
    B, Tq, Tk, dh = q.shape[0], q.shape[1], k.shape[1], E // heads
    def split(x, off):
        return x[..., off:off + E].reshape(B, x.shape[1], heads, dh).transpose(1, 2)
    s = split(q, offs[0]) @ split(k, offs[1]).transpose(-1, -2) / math.sqrt(dh)
    if causal is not None:
        s = s.masked_fill(causal.bool(), float("-inf"))
    if pad is not None:
        s = s.masked_fill(pad.bool()[:, None, None, :], float("-inf"))
    return (torch.softmax(s, -1) @ split(v, offs[2])).transpose(1, 2).reshape(B, Tq, E)


torch.manual_seed(1)
ATTENTION = {
    "attention_self": (lambda x, p, c: attention(x, x, x, 2, (0, 8, 16), 8, p, c),
                       [rnd(2, 5, 24), torch.tensor([[0, 0, 0, 0, 0], [0, 0, 0, 1, 1]], dtype=torch.int32),
                        torch.triu(torch.ones(5, 5, dtype=torch.int32), 1)]),
    "attention_cross": (lambda q, kv, p: attention(q, kv, kv, 4, (0, 0, 8), 8, p),
                        [rnd(2, 3, 8), rnd(2, 6, 16), torch.tensor([[0, 0, 0, 0, 1, 1], [0] * 6], dtype=torch.int32)]),
    "attention_separate": (lambda q, k, v: attention(q, k, v, 3, (0, 0, 0), 6), [rnd(1, 4, 6), rnd(1, 3, 6), rnd(1, 3, 6)]),
}
record(ATTENTION, out)
# Added after the others, so that their random draws stay as they were.
LATE = {
    "mean_mid": (lambda x: x.mean(1), [rnd(3, 4, 5)]),
    # 37 keys: two whole 16-wide runs of the softmax's sums and a ragged end
    "attention_long": (lambda x, p: attention(x, x, x, 2, (0, 8, 16), 8, p),
                       [rnd(2, 37, 24), torch.tensor([[0] * 37, [0] * 30 + [1] * 7], dtype=torch.int32)]),
    # slices that leave columns out, and slices that overlap: gradients accumulate from zero
    "attention_gap": (lambda x: attention(x, x, x, 2, (2, 12, 20), 8), [rnd(1, 4, 30)]),
    "attention_shared_qk": (lambda x: attention(x, x, x, 2, (0, 0, 8), 8), [rnd(1, 4, 16)]),
}
record(LATE, out)
LATER = {  # after LATE, for the same reason
    # scores in the hundreds: exp overflows unless each row's true maximum is taken off first
    "attention_large": (lambda x: attention(x, x, x, 2, (0, 8, 16), 8), [rnd(1, 37, 24, lo=-12.0, hi=12.0)]),
}
record(LATER, out)
fixtures.save("ops", out)
print(f"wrote {len(CASES) + len(ATTENTION) + len(LATE) + len(LATER) + 1} cases")
