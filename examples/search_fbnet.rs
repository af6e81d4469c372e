//! A tiny differentiable architecture search on `fbnet:cifar100` for `cortex-a72` with a
//! latency budget, using nasc's expected-latency term and its exact gradient.
//!
//! There is no training here: the "task" is a stand-in that rewards capacity with diminishing
//! returns (each option's reward is the square root of its latency above the cheapest option of
//! its layer, so bigger blocks help but less and less). The search minimises
//! `−reward(π) + hinge(E[latency] − budget)` over the softmax logits by gradient descent, and
//! prints the expected latency converging under the budget; the final architecture (argmax of
//! each layer) is priced by the table and by the concrete path.
//!
//! Run: `cargo run --release --example search_fbnet [BUDGET_MS]`.

use nasc::costmodel::expect::{Objective, Query};
use nasc::costmodel::table::CostTable;
use nasc::costmodel::{cost, Model};
use nasc::ir::spaces;

fn main() -> anyhow::Result<()> {
    let budget: f64 = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(12.0);
    let model = Model::new(nasc::targets::lookup("cortex-a72")?)?;
    let space = spaces::lookup("fbnet:cifar100")?;
    let t0 = std::time::Instant::now();
    let table = CostTable::build("fbnet:cifar100", space.supernet(), &model)?;
    println!("cost table of fbnet:cifar100 on cortex-a72 built in {:.0} ms", t0.elapsed().as_secs_f64() * 1e3);

    // Stand-in task reward per option: sqrt of its latency above the layer's cheapest option.
    let (_, deltas) = table.additive_lut();
    let reward: Vec<f64> = deltas
        .iter()
        .flat_map(|layer| {
            let min = layer.iter().map(|p| p.latency_ms).fold(f64::INFINITY, f64::min);
            layer.iter().map(move |p| (p.latency_ms - min).max(0.0).sqrt()).collect::<Vec<_>>()
        })
        .collect();

    let mut logits = vec![0.0f64; table.n_logits()];
    let (lr, lambda) = (0.5, 4.0);
    let objective = Objective::Hinge { budget, lambda };
    println!("budget {budget} ms; step, E[latency] ms, reward, penalty");
    for step in 0..=400 {
        let r = table.expected(&Query { objective, ..Query::softmax(logits.clone()) }).map_err(anyhow::Error::msg)?;
        // Reward term: R = Σ π·reward; ∂R/∂α_i = π_i (reward_i − π·reward) per layer.
        let mut grad = r.grad_logits.clone();
        let mut total_reward = 0.0;
        for (o0, opts) in table.offsets.iter().zip(&table.options) {
            let p = &r.probabilities[*o0..o0 + opts.len()];
            let rw = &reward[*o0..o0 + opts.len()];
            let mean: f64 = p.iter().zip(rw).map(|(a, b)| a * b).sum();
            total_reward += mean;
            for i in 0..opts.len() {
                grad[o0 + i] -= p[i] * (rw[i] - mean);
            }
        }
        if step % 50 == 0 {
            println!("{step:>4} {:>10.3} {:>8.3} {:>8.3}", r.latency_ms, total_reward, r.value);
        }
        for (a, g) in logits.iter_mut().zip(&grad) {
            *a -= lr * g;
        }
    }
    let arch: Vec<usize> = table
        .offsets
        .iter()
        .zip(&table.options)
        .map(|(&o0, opts)| (0..opts.len()).max_by(|&a, &b| logits[o0 + a].total_cmp(&logits[o0 + b])).unwrap_or(0))
        .collect();
    let names: Vec<&str> = arch.iter().zip(&table.options).map(|(&i, o)| o[i].as_str()).collect();
    let arch_str = names.join(",");
    let concrete = cost(&space.subnet(&arch_str)?, &model)?;
    println!("chosen: {arch_str}");
    println!(
        "its latency: {:.3} ms from the table, {:.3} ms through the cost model (budget {budget} ms)",
        table.latency(&arch),
        concrete.latency_ms
    );
    Ok(())
}
