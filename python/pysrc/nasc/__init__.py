"""nasc: what a subnet costs on a chip, and the exact gradient of its expected cost.

    import nasc
    t = nasc.Target("cortex-a72")
    t = nasc.Target("cortex-a72", profile="builtin:cortex-a72/fbnet-cifar100-raspi4_latency")  # calibrated
    t.cost("fbnet:cifar100", "k3_e1,skip,...")          # dict: latency_ms, energy_mj, macs, ...
    t.cost_batch("nb201:cifar10", archs)                 # (n, 2) array: latency_ms, energy_mj
    table = t.table("fbnet:cifar100")                    # built once, then microseconds a query
    r = table.expected(alpha.ravel(), tau=1.0, objective="hinge:12,4")
    r["value"], r["grad_logits"]                         # NumPy arrays

For PyTorch, `nasc.torch.ExpectedCost` wraps `Table.expected` in an autograd function.
"""

from ._nasc import Table, Target, profiles_list, spaces_list, targets_list

__all__ = ["Target", "Table", "profiles", "spaces", "targets"]


def profiles():
    """Names of the calibrated profiles shipped with nasc (`profile="builtin:<name>"`)."""
    return profiles_list()


def spaces():
    """Names of the built-in search spaces."""
    return spaces_list()


def targets():
    """Names of the built-in hardware targets."""
    return targets_list()
