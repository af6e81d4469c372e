//! Whole-network costs: per layer, in total, to each early exit, with and without each gated
//! block, and the peak activation memory.

use nasc_ir::op::{GateDecision, Op};
use nasc_ir::shape::numel;
use nasc_ir::{Device, Graph, Result};

use crate::analytic::{Cost, Model};
use crate::kernel::{fuse, Class, Kernel};

/// Cost of one fused kernel.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct LayerCost {
    /// Anchor node name.
    pub name: String,
    /// Fused ops, e.g. `conv2d+batchnorm+relu`.
    pub ops: String,
    /// Class of work.
    pub class: Class,
    /// Output shape.
    pub shape: Vec<usize>,
    /// MACs.
    pub macs: u64,
    /// Parameters.
    pub params: u64,
    /// Latency, ms.
    pub latency_ms: f64,
    /// Energy, mJ.
    pub energy_mj: f64,
    /// Whether an NPU target runs it on its host.
    pub on_host: bool,
    /// Its latency split into the model's terms, ms ([`crate::analytic::term`]).
    #[serde(skip)]
    pub terms_ms: crate::analytic::Terms,
}

/// Cost of running until an early exit fires there.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ExitCost {
    /// Exit node name (`output` for the final output).
    pub name: String,
    /// Exit index (the output's is the number of early exits).
    pub index: usize,
    /// Latency to the decision, every earlier exit's head and decision included, ms.
    pub latency_ms: f64,
    /// Energy to the decision, mJ.
    pub energy_mj: f64,
    /// MACs executed.
    pub macs: u64,
}

/// Cost of a network with a gated block run and skipped.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct GateCost {
    /// Gate node name.
    pub name: String,
    /// Network latency with the block run (every other gate open), ms.
    pub latency_with_ms: f64,
    /// Network latency with the block skipped, ms.
    pub latency_without_ms: f64,
    /// Network energy with the block, mJ.
    pub energy_with_mj: f64,
    /// Network energy without the block, mJ.
    pub energy_without_mj: f64,
    /// MACs of the block.
    pub block_macs: u64,
}

/// The cost of a concrete network on a target.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Report {
    /// Target name.
    pub target: String,
    /// Model name.
    pub model: String,
    /// Architecture string, when the model came from a space.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    /// Latency running to the final output (no exit fires, every gate open), ms.
    pub latency_ms: f64,
    /// Energy of that run, mJ.
    pub energy_mj: f64,
    /// MACs of the whole network.
    pub macs: u64,
    /// Parameters.
    pub params: u64,
    /// Largest sum of live activation buffers during the run, bytes (target precision).
    pub peak_memory_bytes: u64,
    /// Kernels in execution order.
    pub layers: Vec<LayerCost>,
    /// Cost to each early exit, then to the output (empty without exits).
    pub exits: Vec<ExitCost>,
    /// Per-gate costs (empty without gates).
    pub gates: Vec<GateCost>,
    /// The full run's latency split into the model's terms, ms
    /// ([`crate::analytic::term`]); what calibration fits.
    #[serde(skip)]
    pub terms_ms: crate::analytic::Terms,
}

/// Prices a concrete graph on a target.
pub fn cost(graph: &Graph, model: &Model) -> Result<Report> {
    let shapes = graph.validate()?;
    let (kernels, owner) = fuse(graph, &shapes);
    let bpe = model.bytes_per_element();
    let costs = prices(graph, model, &kernels, &owner, &shapes);
    let sum =
        |mask: &dyn Fn(usize) -> bool| -> (f64, f64, u64) {
            kernels.iter().zip(&costs).enumerate().filter(|(i, _)| mask(*i)).fold((0.0, 0.0, 0u64), |a, (_, (k, c))| {
                (a.0 + c.latency_s, a.1 + c.energy_j, a.2.saturating_add(k.macs))
            })
        };
    let kernel_mask = |nodes: &[bool]| -> Vec<bool> {
        let mut m = vec![false; kernels.len()];
        for (i, &b) in nodes.iter().enumerate() {
            if b {
                m[owner[i]] = true;
            }
        }
        m
    };
    let (lat, energy, macs) = sum(&|_| true);
    let mut terms_ms = [0.0; crate::analytic::term::N];
    for c in &costs {
        terms_ms.iter_mut().zip(&c.terms).for_each(|(a, b)| *a += b * 1e3);
    }
    let params = kernels.iter().map(|k| k.params).fold(0, u64::saturating_add);

    let exit_ids = graph.exits();
    let mut exits = Vec::new();
    if !exit_ids.is_empty() {
        let out = graph.output_node()?;
        for k in 0..=exit_ids.len() {
            let targets: Vec<_> = if k < exit_ids.len() { exit_ids[..=k].to_vec() } else { graph.node_ids().collect() };
            let m = kernel_mask(&graph.ancestors_mask(&targets));
            let (l, e, mc) = sum(&|i| m[i]);
            let name =
                if k < exit_ids.len() { graph.node(exit_ids[k]).name.clone() } else { graph.node(out).name.clone() };
            exits.push(ExitCost { name, index: k, latency_ms: l * 1e3, energy_mj: e * 1e3, macs: mc });
        }
    }
    let gates = graph
        .gates()
        .into_iter()
        .map(|g| {
            let body = kernel_mask(&graph.gate_body_mask(g));
            let (l, e, mc) = sum(&|i| !body[i]);
            GateCost {
                name: graph.node(g).name.clone(),
                latency_with_ms: lat * 1e3,
                latency_without_ms: l * 1e3,
                energy_with_mj: energy * 1e3,
                energy_without_mj: e * 1e3,
                block_macs: macs - mc,
            }
        })
        .collect();
    let layers = kernels
        .iter()
        .zip(&costs)
        .filter(|(k, c)| k.class != Class::Free || c.latency_s > 0.0 || c.energy_j > 0.0)
        .map(|(k, c)| LayerCost {
            name: k.name.clone(),
            ops: k.ops.clone(),
            class: k.class,
            shape: k.out_shape.clone(),
            macs: k.macs,
            params: k.params,
            latency_ms: c.latency_s * 1e3,
            energy_mj: c.energy_j * 1e3,
            on_host: c.on_host,
            terms_ms: c.terms.map(|t| t * 1e3),
        })
        .collect();
    Ok(Report {
        target: model.target.name.clone(),
        model: graph.name.clone(),
        arch: graph.meta.get("arch").cloned(),
        latency_ms: lat * 1e3,
        energy_mj: energy * 1e3,
        macs,
        params,
        peak_memory_bytes: peak_memory(graph, &kernels, &owner, &shapes, bpe),
        layers,
        exits,
        gates,
        terms_ms,
    })
}

/// Peak of live activation bytes with kernels run in order: a kernel's output buffer lives
/// from its kernel until its last consumer's; views (identity, flatten, gate, output) alias
/// their input; values inside a fused kernel are never materialised.
fn peak_memory(graph: &Graph, kernels: &[Kernel], owner: &[usize], shapes: &[Vec<usize>], bpe: f64) -> u64 {
    let n = graph.len();
    let mut buf_of: Vec<Option<usize>> = vec![None; n];
    let mut size: Vec<f64> = Vec::new();
    let mut born: Vec<usize> = Vec::new();
    let mut last: Vec<usize> = Vec::new();
    for id in graph.node_ids() {
        let k = owner[id.index()];
        let kern = &kernels[k];
        let ins = graph.inputs(id);
        let node = graph.node(id);
        let aliases = kern.class == Class::Free && !matches!(node.op, Op::Input(_));
        if aliases {
            let src = if matches!(node.op, Op::Gate(_)) { ins[1] } else { ins[0] };
            buf_of[id.index()] = buf_of[src.index()];
        } else if *kern.nodes.last().expect("non-empty") == id {
            buf_of[id.index()] = Some(size.len());
            size.push(numel(&shapes[id.index()]) as f64 * bpe);
            born.push(k);
            last.push(k);
        }
        for &i in ins {
            if let Some(b) = buf_of[i.index()] {
                last[b] = last[b].max(k);
            }
        }
    }
    // Sweep: +size at birth, −size after the last use.
    let mut delta = vec![0.0f64; kernels.len() + 1];
    for b in 0..size.len() {
        delta[born[b]] += size[b];
        delta[last[b] + 1] -= size[b];
    }
    let mut live = 0.0f64;
    let mut peak = 0.0f64;
    for d in delta {
        live += d;
        peak = peak.max(live);
    }
    peak.round() as u64
}

/// Cost of one concrete run: stopping at early exit `exit` (`None`: the output) with the
/// gates in `gates_open` (by gate order; `None`: all open). The concrete path the cost
/// tables are tested against: it fuses and prices the graph itself.
pub fn run_cost(graph: &Graph, model: &Model, exit: Option<usize>, gates_open: Option<&[bool]>) -> Result<(f64, f64)> {
    let shapes = graph.validate()?;
    let (kernels, owner) = fuse(graph, &shapes);
    let exits = graph.exits();
    let targets: Vec<_> = match exit {
        Some(k) if k < exits.len() => exits[..=k].to_vec(),
        _ => graph.node_ids().collect(),
    };
    let costs = prices(graph, model, &kernels, &owner, &shapes);
    let mut run = vec![false; kernels.len()];
    for (i, &b) in graph.ancestors_mask(&targets).iter().enumerate() {
        if b {
            run[owner[i]] = true;
        }
    }
    if let Some(open) = gates_open {
        for (k, g) in graph.gates().into_iter().enumerate() {
            if !open.get(k).copied().unwrap_or(true) {
                for (i, &b) in graph.gate_body_mask(g).iter().enumerate() {
                    if b {
                        run[owner[i]] = false;
                    }
                }
            }
        }
    }
    let (mut l, mut e) = (0.0, 0.0);
    for (k, c) in costs.iter().enumerate() {
        if !run[k] {
            continue;
        }
        l += c.latency_s;
        e += c.energy_j;
    }
    Ok((l * 1e3, e * 1e3))
}

/// Every kernel's cost in its graph. On an NPU target, a kernel whose anchor the graph places
/// on the host (placement rewriting) runs there, and pays for the values crossing the link:
/// each target value it is the first host kernel to read goes to the host (with the hand-off),
/// and its output goes back when a kernel on the target (or a sink) reads it.
fn prices(graph: &Graph, model: &Model, kernels: &[Kernel], owner: &[usize], shapes: &[Vec<usize>]) -> Vec<Cost> {
    let on_host: Vec<bool> = kernels
        .iter()
        .map(|k| model.host.is_some() && graph.node(k.anchor).device == Device::Host && k.class != Class::ExitDecision)
        .collect();
    let mut sent = vec![false; graph.len()];
    let mut costs: Vec<Cost> = kernels
        .iter()
        .enumerate()
        .map(|(ki, k)| {
            if !on_host[ki] {
                return price(graph, model, k);
            }
            let mut c = match model.host_kernel(k) {
                Some(h) => h,
                None => return price(graph, model, k),
            };
            for &x in &k.nodes {
                for &i in graph.inputs(x) {
                    if owner[i.index()] != ki && !on_host[owner[i.index()]] && !sent[i.index()] {
                        sent[i.index()] = true;
                        c = c + model.transfer(numel(&shapes[i.index()]) as u64, true);
                    }
                }
            }
            let last = *k.nodes.last().expect("a kernel has a node");
            if graph.consumers(last).iter().any(|u| !on_host[owner[u.index()]]) {
                c = c + model.transfer(numel(&shapes[last.index()]) as u64, false);
            }
            c.on_host = true;
            c
        })
        .collect();
    pipeline_overlap(graph, model, kernels, owner, &mut costs);
    // A profile's fixed energy per inference goes on the first kernel, which every run executes.
    if let (Some(s), Some(c)) = (&model.scaling, costs.first_mut()) {
        c.energy_j += s.fixed_energy_j;
    }
    costs
}

/// On a layer pipeline with fused depthwise stages (`depthwise_fused` on a `layer_pipeline`
/// NPU), an expansion 1×1 (dense or grouped, through a grouped block's channel shuffle) hands
/// its output to the depthwise through the depthwise's line buffer (no output stream of its
/// own) and runs at the depthwise's output rate — 1/s² of its pixels' work ahead of a stride-s
/// window, which is how HW-NAS-Bench's FPGA table prices a stride-2 FBNet block (its blocks,
/// under one global scale, sit within −8 %…+4 % of the model this way; priced at the
/// expansion's full resolution, the stride-2 ones came out 1.6–2.4× over). The depthwise's
/// window compute overlaps its pointwise neighbours: the three take the longer of their
/// streamed work and the window compute on the window engine's `array[1]` lanes.
fn pipeline_overlap(graph: &Graph, model: &Model, kernels: &[Kernel], owner: &[usize], costs: &mut [Cost]) {
    use crate::analytic::term;
    let Some(n) = model.target.npu() else { return };
    if n.dataflow != nasc_targets::Dataflow::LayerPipeline || !n.depthwise_fused {
        return;
    }
    let hz = n.clock_ghz * 1e9;
    let static_w = model.static_power();
    let on_host: Vec<bool> = costs.iter().map(|c| c.on_host).collect();
    let pointwise = |i: usize| matches!(kernels[i].class, Class::Pointwise | Class::Grouped) && !on_host[i];
    let sole_consumer = |k: &Kernel| -> Option<usize> {
        let last = *k.nodes.last()?;
        match graph.consumers(last).as_slice() {
            [one] => Some(owner[one.index()]),
            _ => None,
        }
    };
    for d in 0..kernels.len() {
        if kernels[d].class != Class::Depthwise || costs[d].on_host {
            continue;
        }
        // The expansion feeding it, through a channel shuffle (a grouped block's) if any.
        let mut feeds = d;
        let mut producer = graph.inputs(kernels[d].anchor).first().map(|i| owner[i.index()]);
        if let Some(q) = producer.filter(|&q| {
            matches!(graph.node(kernels[q].anchor).op, Op::ChannelShuffle(_)) && sole_consumer(&kernels[q]) == Some(d)
        }) {
            feeds = q;
            producer = graph.inputs(kernels[q].anchor).first().map(|i| owner[i.index()]);
        }
        let mut streamed = costs[d].latency_s;
        if let Some(p) = producer.filter(|&p| pointwise(p) && sole_consumer(&kernels[p]) == Some(feeds)) {
            let t = crate::analytic::compute_term(kernels[p].class);
            let handed = (kernels[p].out_elems as f64 / hz).min(costs[p].terms[t]);
            // It computes at the depthwise's output rate: 1/s² of its work before a stride-s one.
            let s = kernels[d].geometry.map_or(1, |g| g.stride[0] * g.stride[1]) as f64;
            let strided = (costs[p].terms[t] - handed) * (1.0 - 1.0 / s);
            costs[p].latency_s -= handed + strided;
            costs[p].terms[t] -= handed + strided;
            // Static power is paid over the time saved no more.
            costs[p].energy_j -= static_w * (handed + strided);
            streamed += costs[p].latency_s;
        }
        if let Some(c) = sole_consumer(&kernels[d]).filter(|&c| pointwise(c)) {
            streamed += costs[c].latency_s;
        }
        let window = kernels[d].macs as f64 / n.array[1] as f64 / hz;
        if window > streamed {
            costs[d].latency_s += window - streamed;
            costs[d].terms[term::DEPTHWISE] += window - streamed;
            costs[d].energy_j += static_w * (window - streamed);
        }
    }
}

/// A kernel's cost in its graph: exit decisions priced as such, and a logit gate's decision a
/// host round trip on an NPU (control flow is free on a CPU).
fn price(graph: &Graph, model: &Model, k: &Kernel) -> Cost {
    let c = if k.class == Class::ExitDecision { model.exit_decision(k) } else { model.kernel(k) };
    match &graph.node(k.anchor).op {
        Op::Gate(g) if matches!(g.decision, GateDecision::Logit) => {
            let gate = model.gate_decision();
            let mut d = c + gate;
            d.on_host = c.on_host || gate.on_host;
            d
        }
        _ => c,
    }
}
