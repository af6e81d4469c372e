//! Host JIT against the reference interpreter: random subnets of every built-in space, with
//! exits firing or not, gates forced open and closed by their logits.

use nasc_codegen::{Jit, Opt};
use nasc_ir::interp::{run, RunOptions};
use nasc_ir::{spaces, Tensor, Weights};
use rand::SeedableRng;

fn rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b).fold(0.0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

#[test]
fn jit_matches_the_interpreter_on_every_space() {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    for name in spaces::NAMES {
        let space = spaces::lookup(name).unwrap();
        for round in 0..1 {
            let g = space.subnet_of(&space.sample(&mut rng)).unwrap();
            let w = Weights::random(&g, round).unwrap();
            let shape = g.infer_shapes().unwrap()[g.input_node().unwrap().index()].clone();
            let x = Tensor::from_fn(&shape, |i| ((i * 7919 + round as usize) % 200) as f32 / 100.0 - 1.0);
            let t0 = std::time::Instant::now();
            let jit = Jit::new(&g, &w, Opt::O1).unwrap();
            let compile = t0.elapsed();
            let n_exits = g.exits().len();
            // No exit fires (θ above any max-softmax), then the first fires (θ = 0).
            for theta in [1.01f32, 0.0] {
                for k in 0..n_exits {
                    jit.set_threshold(k, theta);
                }
                let mut opts = RunOptions::default();
                for &e in &g.exits() {
                    opts.exit_thresholds.insert(g.node(e).name.clone(), theta);
                }
                let want = run(&g, &w, &x, &opts).unwrap();
                let (got, k) = jit.run(&x.data).unwrap();
                assert_eq!(k, want.exit_index, "{name}: exit taken");
                let e = rel(&got, &want.output.data);
                eprintln!(
                    "{name} (θ {theta}): exit {k}, rel. error {e:.2e}, compiled in {:.2} s, arena {} KiB",
                    compile.as_secs_f64(),
                    jit.arena().bytes() / 1024
                );
                assert!(e < 1e-4, "{name}: {e}");
            }
        }
    }
}
