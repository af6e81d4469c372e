//! `nasc show`: layers, shapes, MACs and parameters of a model.

use anyhow::Result;
use clap::Args;
use nasc::ir::{stats, Graph, Op};
use serde_json::json;

use super::model::ModelArgs;

/// Options of `nasc show`.
#[derive(Args, Debug)]
pub struct Options {
    #[command(flatten)]
    model: ModelArgs,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn attrs(op: &Op) -> String {
    let v = serde_json::to_value(op).unwrap_or_default();
    match v.get("attrs") {
        Some(a) => a.to_string(),
        None => String::new(),
    }
}

fn show_supernet(g: &Graph, json: bool) -> Result<()> {
    if json {
        let params: Vec<_> = g.params.iter().map(|p| json!({"name": p.name, "options": p.options})).collect();
        let v = json!({"name": g.name, "supernet": true, "nodes": g.len(), "params": params});
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!("supernet `{}`: {} nodes, {} architecture parameters\n", g.name, g.len(), g.params.len());
    for p in &g.params {
        out += &format!("  {:<16} {}\n", p.name, p.options.join(" | "));
    }
    super::emit(&out)
}

pub fn run(o: Options) -> Result<()> {
    let g = o.model.load(true)?;
    if !g.is_concrete() {
        g.validate_structure()?;
        return show_supernet(&g, o.json);
    }
    g.validate()?;
    let st = stats::node_stats(&g)?;
    let (macs, params) = (
        st.iter().map(|s| s.macs).fold(0, u64::saturating_add),
        st.iter().map(|s| s.params).fold(0, u64::saturating_add),
    );
    let input = g.input_node()?;
    let output = g.output_node()?;
    let exits: Vec<_> = g
        .exits()
        .into_iter()
        .enumerate()
        .map(|(k, e)| {
            let mask = g.ancestors_mask(&g.exits()[..=k]);
            let m: u64 = st.iter().zip(&mask).filter(|(_, &l)| l).map(|(s, _)| s.macs).fold(0, u64::saturating_add);
            let Op::Exit(x) = &g.node(e).op else { unreachable!("exits() returns exit nodes") };
            (k, g.node(e).name.clone(), x.clone(), m)
        })
        .collect();
    let gates: Vec<_> = g
        .gates()
        .into_iter()
        .map(|gt| {
            let mask = g.gate_body_mask(gt);
            let m: u64 = st.iter().zip(&mask).filter(|(_, &l)| l).map(|(s, _)| s.macs).fold(0, u64::saturating_add);
            (g.node(gt).name.clone(), m)
        })
        .collect();
    if o.json {
        let layers: Vec<_> = g
            .node_ids()
            .map(|id| {
                let n = g.node(id);
                let s = &st[id.index()];
                json!({"name": n.name, "op": n.op.name(), "shape": s.shape, "macs": s.macs, "params": s.params})
            })
            .collect();
        let v = json!({
            "name": g.name,
            "space": g.meta.get("space"),
            "arch": g.meta.get("arch"),
            "input_shape": st[input.index()].shape,
            "output_shape": st[output.index()].shape,
            "macs": macs,
            "params": params,
            "layers": layers,
            "exits": exits.iter().map(|(k, n, x, m)| json!({"index": k, "name": n, "rule": x.rule, "threshold": x.threshold, "macs_to_exit": m})).collect::<Vec<_>>(),
            "gates": gates.iter().map(|(n, m)| json!({"name": n, "body_macs": m})).collect::<Vec<_>>(),
        });
        return super::emit(&format!("{}\n", serde_json::to_string_pretty(&v)?));
    }
    let mut out = format!("model `{}`", g.name);
    if let (Some(s), Some(a)) = (g.meta.get("space"), g.meta.get("arch")) {
        out += &format!(" ({s}, arch {a})");
    }
    out.push('\n');
    out += &format!("{:<36} {:<16} {:<18} {:>14} {:>10}  attrs\n", "layer", "op", "shape", "MACs", "params");
    for id in g.node_ids() {
        let n = g.node(id);
        let s = &st[id.index()];
        out += &format!(
            "{:<36} {:<16} {:<18} {:>14} {:>10}  {}\n",
            n.name,
            n.op.name(),
            format!("{:?}", s.shape),
            s.macs,
            s.params,
            attrs(&n.op)
        );
    }
    out += &format!(
        "total: {} layers, {} MACs ({:.2} M), {} params ({:.3} M)\n",
        g.len(),
        macs,
        macs as f64 / 1e6,
        params,
        params as f64 / 1e6
    );
    for (k, n, x, m) in &exits {
        out += &format!("exit {k} `{n}`: {:?} θ={} — {:.2} M MACs to reach it\n", x.rule, x.threshold, *m as f64 / 1e6);
    }
    for (n, m) in &gates {
        out += &format!("gate `{n}`: body {:.2} M MACs\n", *m as f64 / 1e6);
    }
    super::emit(&out)
}
