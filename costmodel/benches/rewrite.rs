//! Equality saturation and DAG extraction of a whole `fbnet` supernet (all 22 × 9 candidates in
//! one graph) priced by the cost model, against the baseline of extracting the unsaturated
//! e-graph (conversion and extraction alone) in the same run. Prints the e-graph size and the
//! stop reason once.
//!
//! Run: `cargo bench -p nasc-costmodel --bench rewrite`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use nasc_costmodel::opcost::OpCost;
use nasc_costmodel::Model;
use nasc_ir::rewrite::{optimize, optimize_with, Limits};
use nasc_ir::spaces;

fn bench(c: &mut Criterion) {
    let g = spaces::lookup("fbnet:cifar100").unwrap().supernet().graph().clone();
    for target in ["cortex-a72", "eyeriss"] {
        let model = Model::new(nasc_targets::lookup(target).unwrap()).unwrap();
        let limits = Limits::default();
        let t0 = std::time::Instant::now();
        let (out, _, r) = optimize(&g, None, Box::new(OpCost::new(model.clone())), &limits).unwrap();
        eprintln!(
            "fbnet supernet on {target}: {} → {} nodes; e-graph {} → {} nodes, {} classes, {} iterations, {}; \
             saturate {:.3} s, extract {:.3} s, total {:.3} s; DAG cost {:.2} → {:.2} ms",
            g.len(),
            out.len(),
            r.initial_nodes,
            r.egraph_nodes,
            r.egraph_classes,
            r.iterations,
            r.stop_reason,
            r.saturate_s,
            r.extract_s,
            t0.elapsed().as_secs_f64(),
            r.cost_before,
            r.cost_after
        );
        let mut group = c.benchmark_group(format!("fbnet-supernet/{target}"));
        group.sample_size(10).measurement_time(Duration::from_secs(8));
        group.bench_function("saturate+extract", |b| {
            b.iter(|| black_box(optimize(&g, None, Box::new(OpCost::new(model.clone())), &limits).unwrap()))
        });
        group.bench_function("baseline: convert+extract, no rules", |b| {
            b.iter(|| black_box(optimize_with(&g, None, Box::new(OpCost::new(model.clone())), &limits, &[]).unwrap()))
        });
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
