"""PyTorch glue: the expected cost of a supernet as a differentiable term.

    from nasc.torch import ExpectedCost
    table = nasc.Target("cortex-a72").table("fbnet:cifar100")
    lat = ExpectedCost.apply(alpha, table)          # alpha: tensor of table.n_logits logits
    loss = ce + lam * lat

`ExpectedCost.apply(logits, table, tau=1.0, objective="latency")` returns the objective's value
as a 0-d tensor; its backward is nasc's exact gradient with respect to the logits.
"""

import numpy as np
import torch


class ExpectedCost(torch.autograd.Function):
    """Expected cost (or another nasc objective) of a supernet under softmax(logits / tau)."""

    @staticmethod
    def forward(ctx, logits, table, tau=1.0, objective="latency"):
        flat = logits.detach().to(dtype=torch.float64, device="cpu").reshape(-1).numpy()
        r = table.expected(np.ascontiguousarray(flat), tau=float(tau), objective=objective)
        grad = torch.from_numpy(r["grad_logits"]).to(dtype=logits.dtype, device=logits.device)
        ctx.save_for_backward(grad.reshape(logits.shape))
        return logits.new_tensor(r["value"])

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad_output * grad, None, None, None
