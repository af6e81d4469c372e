//! nasc codegen: native code for a concrete graph, through LLVM (inkwell).
//!
//! [`lower`] turns a concrete graph and its weights into an LLVM module: one internal function
//! per node (its kernel, shapes as constants, loops LLVM's vectoriser can work on), weights as
//! constant globals, every activation in one arena planned by liveness ([`plan_arena`]), and
//! the driver
//!
//! ```c
//! int32_t NAME_infer(const float *input, float *output, float *arena);
//! void NAME_set_threshold(int32_t exit, float theta);
//! ```
//!
//! which runs the kernels in the reference interpreter's order — each early exit's ancestors,
//! then its decision (max-softmax ≥ θ or entropy ≤ θ on its scores, branching out with the
//! exit's index), then the rest — and guards the kernels of a gated block behind its gate's
//! decision. [`Jit`] runs it on the host; [`emit`] writes objects, assembly, LLVM IR and a C
//! header for any CPU target.
//!
//! **Architecture Invariant:** the only crate linking LLVM; it consumes concrete graphs from
//! `ir` and knows nothing of cost models. Unsafe code is confined to building GEPs and calling
//! the JIT-compiled driver, whose buffers this crate sizes itself.
#![warn(missing_docs)]
#![allow(unsafe_code)]

use std::collections::BTreeMap;
use std::path::Path;

use inkwell::builder::Builder;
use inkwell::context::Context;
use inkwell::execution_engine::JitFunction;
use inkwell::module::{Linkage, Module};
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine, TargetTriple};
use inkwell::types::FloatType;
use inkwell::values::{FloatValue, FunctionValue, IntValue, PointerValue};
use inkwell::{FloatPredicate, IntPredicate, OptimizationLevel};
use nasc_ir::op::{Activation, ExitRule, GateDecision, Op};
use nasc_ir::shape::numel;
use nasc_ir::{Graph, NodeId, Shape, Tensor, Weights};

/// A codegen failure, naming the node or the step.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("codegen: {0}")]
pub struct CodegenError(pub String);

type Result<T> = std::result::Result<T, CodegenError>;

fn cg<E: std::fmt::Display>(e: E) -> CodegenError {
    CodegenError(e.to_string())
}

/// Where each node's output lives in the arena (in f32 elements), and the arena's size.
#[derive(Clone, Debug, PartialEq)]
pub struct ArenaPlan {
    /// Offset of each node's output, by node index (`None` for sinks without storage).
    pub offsets: Vec<Option<usize>>,
    /// Arena size in f32 elements.
    pub elements: usize,
}

impl ArenaPlan {
    /// Arena size in bytes.
    pub fn bytes(&self) -> usize {
        self.elements * 4
    }
}

/// Plans the arena: each node's output gets a slot from the time it is computed until its
/// last consumer has run (in `order`), first-fit into freed space.
pub fn plan_arena(graph: &Graph, shapes: &[Shape], order: &[NodeId]) -> ArenaPlan {
    let n = graph.len();
    let pos: Vec<usize> = {
        let mut p = vec![usize::MAX; n];
        for (i, id) in order.iter().enumerate() {
            p[id.index()] = i;
        }
        p
    };
    let mut last = vec![0usize; n];
    for &id in order {
        for &i in graph.inputs(id) {
            last[i.index()] = last[i.index()].max(pos[id.index()]);
        }
        // Sinks' values are read by the driver after the run: keep them to the end.
        if graph.node(id).op.is_sink() {
            last[id.index()] = usize::MAX;
        }
    }
    let mut offsets = vec![None; n];
    let mut free: Vec<(usize, usize)> = Vec::new(); // (offset, size)
    let mut live: Vec<(usize, usize, usize)> = Vec::new(); // (last use, offset, size)
    let mut top = 0usize;
    for (step, &id) in order.iter().enumerate() {
        // Release everything whose last use is before this step.
        live.retain(|&(l, o, s)| {
            if l < step {
                free.push((o, s));
                false
            } else {
                true
            }
        });
        let size = numel(&shapes[id.index()]).max(1);
        let slot = free.iter().position(|&(_, s)| s >= size);
        let off = match slot {
            Some(i) => {
                let (o, s) = free.remove(i);
                if s > size {
                    free.push((o + size, s - size));
                }
                o
            }
            None => {
                top += size;
                top - size
            }
        };
        offsets[id.index()] = Some(off);
        live.push((last[id.index()], off, size));
    }
    ArenaPlan { offsets, elements: top.max(1) }
}

/// One step of the driver.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    /// Run a node's kernel, when every listed gate is open.
    Run(NodeId, Vec<usize>),
    /// Decide gate `k`.
    Decide(usize),
    /// Check early exit `k`.
    Exit(usize),
}

/// The interpreter's order: per exit, its not-yet-run ancestors then its decision; then the
/// output's remaining ancestors. A gated block's kernels wait for (and are guarded by) its
/// decision, whose logit is computed first.
fn schedule(g: &Graph) -> Result<Vec<Step>> {
    let exits = g.exits();
    let gates = g.gates();
    let bodies: Vec<Vec<bool>> = gates.iter().map(|&gt| g.gate_body_mask(gt)).collect();
    let mut done = vec![false; g.len()];
    let mut decided = vec![false; gates.len()];
    let mut steps = Vec::new();
    fn pull(
        g: &Graph,
        id: NodeId,
        gates: &[NodeId],
        bodies: &[Vec<bool>],
        done: &mut Vec<bool>,
        decided: &mut Vec<bool>,
        steps: &mut Vec<Step>,
    ) {
        // Ancestors first, in node order.
        let mask = g.ancestors_mask(&[id]);
        for n in g.node_ids() {
            if !mask[n.index()] || done[n.index()] {
                continue;
            }
            let guards: Vec<usize> = (0..gates.len()).filter(|&k| bodies[k][n.index()]).collect();
            for &k in &guards {
                if !decided[k] {
                    decided[k] = true;
                    if let Op::Gate(gt) = &g.node(gates[k]).op {
                        if matches!(gt.decision, GateDecision::Logit) {
                            let logit = g.inputs(gates[k])[2];
                            pull(g, logit, gates, bodies, done, decided, steps);
                        }
                    }
                    steps.push(Step::Decide(k));
                }
            }
            if let Some(k) = gates.iter().position(|&x| x == n) {
                if !decided[k] {
                    decided[k] = true;
                    if let Op::Gate(gt) = &g.node(n).op {
                        if matches!(gt.decision, GateDecision::Logit) {
                            let logit = g.inputs(n)[2];
                            pull(g, logit, gates, bodies, done, decided, steps);
                        }
                    }
                    steps.push(Step::Decide(k));
                }
            }
            done[n.index()] = true;
            steps.push(Step::Run(n, guards));
        }
    }
    for (k, &e) in exits.iter().enumerate() {
        pull(g, e, &gates, &bodies, &mut done, &mut decided, &mut steps);
        steps.push(Step::Exit(k));
    }
    let out = g.output_node().map_err(cg)?;
    pull(g, out, &gates, &bodies, &mut done, &mut decided, &mut steps);
    Ok(steps)
}

struct Emitter<'a, 'ctx> {
    ctx: &'ctx Context,
    module: &'a Module<'ctx>,
    b: Builder<'ctx>,
    f32t: FloatType<'ctx>,
    func: FunctionValue<'ctx>,
    arena: PointerValue<'ctx>,
}

impl<'ctx> Emitter<'_, 'ctx> {
    fn i64(&self, v: usize) -> IntValue<'ctx> {
        self.ctx.i64_type().const_int(v as u64, false)
    }
    fn f(&self, v: f32) -> FloatValue<'ctx> {
        self.f32t.const_float(f64::from(v))
    }
    fn ptr_at(&self, base: PointerValue<'ctx>, idx: IntValue<'ctx>) -> Result<PointerValue<'ctx>> {
        unsafe { self.b.build_in_bounds_gep(self.f32t, base, &[idx], "p") }.map_err(cg)
    }
    fn load(&self, base: PointerValue<'ctx>, idx: IntValue<'ctx>) -> Result<FloatValue<'ctx>> {
        let p = self.ptr_at(base, idx)?;
        Ok(self.b.build_load(self.f32t, p, "v").map_err(cg)?.into_float_value())
    }
    fn store(&self, base: PointerValue<'ctx>, idx: IntValue<'ctx>, v: FloatValue<'ctx>) -> Result<()> {
        let p = self.ptr_at(base, idx)?;
        self.b.build_store(p, v).map_err(cg)?;
        Ok(())
    }
    fn add(&self, a: IntValue<'ctx>, b: IntValue<'ctx>) -> Result<IntValue<'ctx>> {
        self.b.build_int_add(a, b, "a").map_err(cg)
    }
    fn mul(&self, a: IntValue<'ctx>, b: usize) -> Result<IntValue<'ctx>> {
        self.b.build_int_mul(a, self.i64(b), "m").map_err(cg)
    }
    fn intrinsic(&self, name: &str, args: &[FloatValue<'ctx>]) -> Result<FloatValue<'ctx>> {
        let f = self.module.get_function(name).unwrap_or_else(|| {
            let params: Vec<_> = args.iter().map(|_| self.f32t.into()).collect();
            self.module.add_function(name, self.f32t.fn_type(&params, false), None)
        });
        let a: Vec<_> = args.iter().map(|&v| v.into()).collect();
        let call = self.b.build_call(f, &a, "i").map_err(cg)?;
        match call.try_as_basic_value() {
            inkwell::values::ValueKind::Basic(v) => Ok(v.into_float_value()),
            _ => Err(CodegenError(format!("{name} returned no value"))),
        }
    }
    fn fmax(&self, a: FloatValue<'ctx>, b: FloatValue<'ctx>) -> Result<FloatValue<'ctx>> {
        self.intrinsic("llvm.maxnum.f32", &[a, b])
    }
    fn fmin(&self, a: FloatValue<'ctx>, b: FloatValue<'ctx>) -> Result<FloatValue<'ctx>> {
        self.intrinsic("llvm.minnum.f32", &[a, b])
    }
    fn fadd(&self, a: FloatValue<'ctx>, b: FloatValue<'ctx>) -> Result<FloatValue<'ctx>> {
        self.b.build_float_add(a, b, "s").map_err(cg)
    }
    fn fmul(&self, a: FloatValue<'ctx>, b: FloatValue<'ctx>) -> Result<FloatValue<'ctx>> {
        self.b.build_float_mul(a, b, "p").map_err(cg)
    }
    fn fdiv(&self, a: FloatValue<'ctx>, b: FloatValue<'ctx>) -> Result<FloatValue<'ctx>> {
        self.b.build_float_div(a, b, "d").map_err(cg)
    }

    /// `for i in 0..n { body(i) }`, as a loop in the current function.
    fn lp(&self, n: usize, body: &mut dyn FnMut(IntValue<'ctx>) -> Result<()>) -> Result<()> {
        let i64t = self.ctx.i64_type();
        let pre = self.b.get_insert_block().ok_or_else(|| CodegenError("no insert block".into()))?;
        let head = self.ctx.append_basic_block(self.func, "loop");
        let exit = self.ctx.append_basic_block(self.func, "after");
        self.b.build_unconditional_branch(head).map_err(cg)?;
        self.b.position_at_end(head);
        let phi = self.b.build_phi(i64t, "i").map_err(cg)?;
        phi.add_incoming(&[(&i64t.const_zero(), pre)]);
        let i = phi.as_basic_value().into_int_value();
        body(i)?;
        let next = self.add(i, self.i64(1))?;
        let latch = self.b.get_insert_block().ok_or_else(|| CodegenError("no insert block".into()))?;
        phi.add_incoming(&[(&next, latch)]);
        let cond = self.b.build_int_compare(IntPredicate::ULT, next, self.i64(n), "c").map_err(cg)?;
        self.b.build_conditional_branch(cond, head, exit).map_err(cg)?;
        self.b.position_at_end(exit);
        Ok(())
    }

    fn act(&self, a: Activation, x: FloatValue<'ctx>) -> Result<FloatValue<'ctx>> {
        let zero = self.f(0.0);
        let six = self.f(6.0);
        let hsig = |x: FloatValue<'ctx>| -> Result<FloatValue<'ctx>> {
            let t = self.fmin(self.fmax(self.fadd(x, self.f(3.0))?, zero)?, six)?;
            self.fdiv(t, six)
        };
        let sigmoid = |x: FloatValue<'ctx>| -> Result<FloatValue<'ctx>> {
            let e = self.intrinsic("llvm.exp.f32", &[self.b.build_float_neg(x, "n").map_err(cg)?])?;
            self.fdiv(self.f(1.0), self.fadd(self.f(1.0), e)?)
        };
        match a {
            Activation::Relu => self.fmax(x, zero),
            Activation::Relu6 => self.fmin(self.fmax(x, zero)?, six),
            Activation::Hswish => self.fmul(x, hsig(x)?),
            Activation::Hsigmoid => hsig(x),
            Activation::Sigmoid => sigmoid(x),
            Activation::Swish => {
                let e = self.intrinsic("llvm.exp.f32", &[self.b.build_float_neg(x, "n").map_err(cg)?])?;
                self.fdiv(x, self.fadd(self.f(1.0), e)?)
            }
        }
    }

    /// A constant global array of weights.
    fn global(&self, name: &str, data: &[f32]) -> PointerValue<'ctx> {
        let vals: Vec<FloatValue<'ctx>> = data.iter().map(|&v| self.f(v)).collect();
        let arr = self.f32t.const_array(&vals);
        let g = self.module.add_global(self.f32t.array_type(data.len() as u32), None, name);
        g.set_initializer(&arr);
        g.set_constant(true);
        g.set_linkage(Linkage::Private);
        g.as_pointer_value()
    }
}

/// Lowers a concrete graph with its weights into `module`, defining `NAME_infer` and
/// `NAME_set_threshold`. Returns the arena plan.
pub fn lower<'ctx>(
    ctx: &'ctx Context,
    module: &Module<'ctx>,
    graph: &Graph,
    weights: &Weights,
    name: &str,
) -> Result<ArenaPlan> {
    let shapes = graph.validate().map_err(cg)?;
    weights.check(graph).map_err(cg)?;
    let steps = schedule(graph)?;
    let order: Vec<NodeId> =
        steps.iter().filter_map(|s| if let Step::Run(n, _) = s { Some(*n) } else { None }).collect();
    let plan = plan_arena(graph, &shapes, &order);
    let f32t = ctx.f32_type();
    let ptr = ctx.ptr_type(inkwell::AddressSpace::default());
    let void = ctx.void_type();
    let i32t = ctx.i32_type();
    let exits = graph.exits();
    let gates = graph.gates();

    // Thresholds: a global array with a setter.
    let thetas: Vec<f32> = exits
        .iter()
        .map(|&e| match &graph.node(e).op {
            Op::Exit(x) => x.threshold,
            _ => 0.0,
        })
        .collect();
    let theta_g = module.add_global(f32t.array_type(thetas.len().max(1) as u32), None, &format!("{name}_thresholds"));
    let tv: Vec<FloatValue<'_>> = if thetas.is_empty() {
        vec![f32t.const_zero()]
    } else {
        thetas.iter().map(|&t| f32t.const_float(f64::from(t))).collect()
    };
    theta_g.set_initializer(&f32t.const_array(&tv));
    theta_g.set_linkage(Linkage::Internal);
    {
        let setter = module.add_function(
            &format!("{name}_set_threshold"),
            void.fn_type(&[i32t.into(), f32t.into()], false),
            None,
        );
        let b = ctx.create_builder();
        let entry = ctx.append_basic_block(setter, "entry");
        let set = ctx.append_basic_block(setter, "set");
        let done = ctx.append_basic_block(setter, "done");
        b.position_at_end(entry);
        let k = setter.get_nth_param(0).expect("param").into_int_value();
        let ok =
            b.build_int_compare(IntPredicate::ULT, k, i32t.const_int(thetas.len() as u64, false), "ok").map_err(cg)?;
        b.build_conditional_branch(ok, set, done).map_err(cg)?;
        b.position_at_end(set);
        let k64 = b.build_int_z_extend(k, ctx.i64_type(), "k").map_err(cg)?;
        let p = unsafe { b.build_in_bounds_gep(f32t, theta_g.as_pointer_value(), &[k64], "p") }.map_err(cg)?;
        b.build_store(p, setter.get_nth_param(1).expect("param").into_float_value()).map_err(cg)?;
        b.build_unconditional_branch(done).map_err(cg)?;
        b.position_at_end(done);
        b.build_return(None).map_err(cg)?;
    }

    // One function per node: `void node(float *arena)`.
    let kernel_t = void.fn_type(&[ptr.into()], false);
    let mut kernels: BTreeMap<usize, FunctionValue<'_>> = BTreeMap::new();
    for &id in &order {
        let node = graph.node(id);
        if matches!(node.op, Op::Input(_)) {
            continue;
        }
        let f = module.add_function(&format!("{name}_k{}", id.index()), kernel_t, Some(Linkage::Internal));
        let e = Emitter {
            ctx,
            module,
            b: ctx.create_builder(),
            f32t,
            func: f,
            arena: f.get_nth_param(0).expect("arena").into_pointer_value(),
        };
        let entry = ctx.append_basic_block(f, "entry");
        e.b.position_at_end(entry);
        kernel(&e, graph, weights, &shapes, &plan, id)
            .map_err(|err| CodegenError(format!("node `{}` ({}): {}", node.name, node.op.name(), err.0)))?;
        e.b.build_return(None).map_err(cg)?;
        kernels.insert(id.index(), f);
    }

    // The driver.
    let drv =
        module.add_function(&format!("{name}_infer"), i32t.fn_type(&[ptr.into(), ptr.into(), ptr.into()], false), None);
    let e = Emitter {
        ctx,
        module,
        b: ctx.create_builder(),
        f32t,
        func: drv,
        arena: drv.get_nth_param(2).expect("arena").into_pointer_value(),
    };
    let input = drv.get_nth_param(0).expect("input").into_pointer_value();
    let output = drv.get_nth_param(1).expect("output").into_pointer_value();
    let entry = ctx.append_basic_block(drv, "entry");
    e.b.position_at_end(entry);
    let in_id = graph.input_node().map_err(cg)?;
    let in_off = plan.offsets[in_id.index()].expect("input planned");
    e.lp(numel(&shapes[in_id.index()]), &mut |i| {
        let v = e.load(input, i)?;
        e.store(e.arena, e.add(i, e.i64(in_off))?, v)
    })?;
    let mut gate_flags: Vec<Option<IntValue<'_>>> = vec![None; gates.len()];
    let copy_out = |e: &Emitter<'_, 'ctx>, src: NodeId| -> Result<()> {
        let off = plan.offsets[src.index()].expect("planned");
        e.lp(numel(&shapes[src.index()]), &mut |i| {
            let v = e.load(e.arena, e.add(i, e.i64(off))?)?;
            e.store(output, i, v)
        })
    };
    for step in &steps {
        match step {
            Step::Run(id, guards) => {
                let Some(&f) = kernels.get(&id.index()) else { continue };
                let mut cond: Option<IntValue<'_>> = None;
                for &k in guards {
                    let flag = gate_flags[k].ok_or_else(|| CodegenError("gate used before its decision".into()))?;
                    cond = Some(match cond {
                        Some(c) => e.b.build_and(c, flag, "g").map_err(cg)?,
                        None => flag,
                    });
                }
                match cond {
                    None => {
                        e.b.build_call(f, &[e.arena.into()], "").map_err(cg)?;
                    }
                    Some(c) => {
                        let run = ctx.append_basic_block(drv, "gated");
                        let after = ctx.append_basic_block(drv, "after_gate");
                        e.b.build_conditional_branch(c, run, after).map_err(cg)?;
                        e.b.position_at_end(run);
                        e.b.build_call(f, &[e.arena.into()], "").map_err(cg)?;
                        e.b.build_unconditional_branch(after).map_err(cg)?;
                        e.b.position_at_end(after);
                    }
                }
            }
            Step::Decide(k) => {
                let gid = gates[*k];
                let Op::Gate(gt) = &graph.node(gid).op else { unreachable!("gates() returns gates") };
                let flag = match gt.decision {
                    GateDecision::Logit => {
                        let l = graph.inputs(gid)[2];
                        let v = e.load(e.arena, e.i64(plan.offsets[l.index()].expect("planned")))?;
                        e.b.build_float_compare(FloatPredicate::OGT, v, e.f(0.0), "open").map_err(cg)?
                    }
                    GateDecision::External { probability } => {
                        ctx.bool_type().const_int(u64::from(probability >= 0.5), false)
                    }
                };
                gate_flags[*k] = Some(flag);
            }
            Step::Exit(k) => {
                let xid = exits[*k];
                let Op::Exit(x) = &graph.node(xid).op else { unreachable!("exits() returns exits") };
                let scores = graph.inputs(xid)[0];
                let off = plan.offsets[scores.index()].expect("planned");
                let classes = shapes[scores.index()][1];
                let stat = exit_statistic(&e, x.rule, off, classes)?;
                let tp = unsafe { e.b.build_in_bounds_gep(f32t, theta_g.as_pointer_value(), &[e.i64(*k)], "t") }
                    .map_err(cg)?;
                let theta = e.b.build_load(f32t, tp, "theta").map_err(cg)?.into_float_value();
                let pred = if x.rule == ExitRule::MaxSoftmax { FloatPredicate::OGE } else { FloatPredicate::OLE };
                let fires = e.b.build_float_compare(pred, stat, theta, "fires").map_err(cg)?;
                let take = ctx.append_basic_block(drv, "exit");
                let cont = ctx.append_basic_block(drv, "continue");
                e.b.build_conditional_branch(fires, take, cont).map_err(cg)?;
                e.b.position_at_end(take);
                copy_out(&e, scores)?;
                e.b.build_return(Some(&i32t.const_int(*k as u64, false))).map_err(cg)?;
                e.b.position_at_end(cont);
            }
        }
    }
    let out = graph.output_node().map_err(cg)?;
    copy_out(&e, graph.inputs(out)[0])?;
    e.b.build_return(Some(&i32t.const_int(exits.len() as u64, false))).map_err(cg)?;
    module
        .verify()
        .map_err(|m| CodegenError(format!("LLVM verifier: {}", m.to_string().lines().next().unwrap_or(""))))?;
    Ok(plan)
}

/// Max-softmax probability or softmax entropy of `classes` scores at `off`.
fn exit_statistic<'ctx>(e: &Emitter<'_, 'ctx>, rule: ExitRule, off: usize, classes: usize) -> Result<FloatValue<'ctx>> {
    let mut m = e.f(f32::NEG_INFINITY);
    for c in 0..classes {
        m = e.fmax(m, e.load(e.arena, e.i64(off + c))?)?;
    }
    let mut sum = e.f(0.0);
    let mut weighted = e.f(0.0);
    for c in 0..classes {
        let d = e.b.build_float_sub(e.load(e.arena, e.i64(off + c))?, m, "d").map_err(cg)?;
        let ex = e.intrinsic("llvm.exp.f32", &[d])?;
        sum = e.fadd(sum, ex)?;
        weighted = e.fadd(weighted, e.fmul(ex, d)?)?;
    }
    match rule {
        ExitRule::MaxSoftmax => e.fdiv(e.f(1.0), sum),
        // H = log Σe − Σ p·d with p = e/Σe, d = x − max.
        ExitRule::Entropy => {
            let ln = e.intrinsic("llvm.log.f32", &[sum])?;
            e.b.build_float_sub(ln, e.fdiv(weighted, sum)?, "h").map_err(cg)
        }
    }
}

/// The body of one node's kernel.
fn kernel(e: &Emitter<'_, '_>, g: &Graph, w: &Weights, shapes: &[Shape], plan: &ArenaPlan, id: NodeId) -> Result<()> {
    let node = g.node(id);
    let ins = g.inputs(id);
    let out_off = plan.offsets[id.index()].expect("planned");
    let off = |n: NodeId| plan.offsets[n.index()].expect("planned");
    let out_shape = &shapes[id.index()];
    let a = e.arena;
    let wt = |t: &str| -> Result<Tensor> { w.get(&node.name, t).cloned().map_err(cg) };
    let copy = |src: usize, n: usize| -> Result<()> {
        e.lp(n, &mut |i| {
            let v = e.load(a, e.add(i, e.i64(src))?)?;
            e.store(a, e.add(i, e.i64(out_off))?, v)
        })
    };
    match &node.op {
        Op::Input(_) => {}
        Op::Output | Op::Identity | Op::Flatten | Op::Exit(_) => copy(off(ins[0]), numel(out_shape))?,
        Op::Relu | Op::Relu6 | Op::Hswish | Op::Hsigmoid | Op::Sigmoid | Op::Swish => {
            let act = node.op.as_activation().expect("activation");
            let src = off(ins[0]);
            e.lp(numel(out_shape), &mut |i| {
                let v = e.act(act, e.load(a, e.add(i, e.i64(src))?)?)?;
                e.store(a, e.add(i, e.i64(out_off))?, v)
            })?;
        }
        Op::Zero => e.lp(numel(out_shape), &mut |i| e.store(a, e.add(i, e.i64(out_off))?, e.f(0.0)))?,
        Op::Add => {
            let srcs: Vec<usize> = ins.iter().map(|&i| off(i)).collect();
            e.lp(numel(out_shape), &mut |i| {
                let mut s = e.load(a, e.add(i, e.i64(srcs[0]))?)?;
                for &o in &srcs[1..] {
                    s = e.fadd(s, e.load(a, e.add(i, e.i64(o))?)?)?;
                }
                e.store(a, e.add(i, e.i64(out_off))?, s)
            })?;
        }
        Op::Mul => {
            let (x, y) = (off(ins[0]), off(ins[1]));
            let per_channel = shapes[ins[1].index()] != *out_shape;
            let inner = if per_channel { out_shape[2] * out_shape[3] } else { 1 };
            e.lp(numel(out_shape), &mut |i| {
                let yi = if per_channel { e.b.build_int_unsigned_div(i, e.i64(inner), "c").map_err(cg)? } else { i };
                let v = e.fmul(e.load(a, e.add(i, e.i64(x))?)?, e.load(a, e.add(yi, e.i64(y))?)?)?;
                e.store(a, e.add(i, e.i64(out_off))?, v)
            })?;
        }
        Op::BatchNorm(bn) => {
            let (gm, bt, mn, vr) = (wt("gamma")?, wt("beta")?, wt("mean")?, wt("var")?);
            let c = out_shape[1];
            let inner: usize = out_shape[2..].iter().product();
            let scale: Vec<f32> = (0..c).map(|k| gm.data[k] / (vr.data[k] + bn.epsilon).sqrt()).collect();
            let shift: Vec<f32> = (0..c).map(|k| bt.data[k] - mn.data[k] * scale[k]).collect();
            let sg = e.global(&format!("{}.scale", node.name), &scale);
            let hg = e.global(&format!("{}.shift", node.name), &shift);
            let src = off(ins[0]);
            let n = out_shape[0];
            e.lp(n * c, &mut |nc| {
                let ch = e.b.build_int_unsigned_rem(nc, e.i64(c), "ch").map_err(cg)?;
                let (s, h) = (e.load(sg, ch)?, e.load(hg, ch)?);
                let base = e.mul(nc, inner)?;
                e.lp(inner, &mut |i| {
                    let idx = e.add(base, i)?;
                    let v = e.load(a, e.add(idx, e.i64(src))?)?;
                    let y = e.fadd(e.fmul(v, s)?, h)?;
                    e.store(a, e.add(idx, e.i64(out_off))?, y)
                })
            })?;
        }
        Op::Conv2d(c) => {
            let s = &shapes[ins[0].index()];
            let (n, cin, h, wd) = (s[0], s[1], s[2], s[3]);
            let (cout, oh, ow) = (out_shape[1], out_shape[2], out_shape[3]);
            let groups = c.groups.resolve(cin);
            let (cin_g, cout_g) = (cin / groups, cout / groups);
            let [kh, kw] = c.kernel;
            let wg = e.global(&format!("{}.weight", node.name), &wt("weight")?.data);
            let bias = if c.bias { Some(e.global(&format!("{}.bias", node.name), &wt("bias")?.data)) } else { None };
            let src = off(ins[0]);
            // Fully unrolled over the kernel window with constant indices; loops over batch,
            // output channel, output row and column, and input channel of the group.
            e.lp(n * cout, &mut |noc| {
                let oc = e.b.build_int_unsigned_rem(noc, e.i64(cout), "oc").map_err(cg)?;
                let b = e.b.build_int_unsigned_div(noc, e.i64(cout), "b").map_err(cg)?;
                let grp = e.b.build_int_unsigned_div(oc, e.i64(cout_g), "g").map_err(cg)?;
                e.lp(oh, &mut |oy| {
                    e.lp(ow, &mut |ox| {
                        let acc_ptr = e.b.build_alloca(e.f32t, "acc").map_err(cg)?;
                        let init = match bias {
                            Some(bg) => e.load(bg, oc)?,
                            None => e.f(0.0),
                        };
                        e.b.build_store(acc_ptr, init).map_err(cg)?;
                        e.lp(cin_g, &mut |icg| {
                            let ic = e.add(e.mul(grp, cin_g)?, icg)?;
                            let plane = e.mul(e.add(e.mul(b, cin)?, ic)?, h * wd)?;
                            let wbase = e.mul(e.add(e.mul(oc, cin_g)?, icg)?, kh * kw)?;
                            let mut acc = e.b.build_load(e.f32t, acc_ptr, "acc").map_err(cg)?.into_float_value();
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    // iy = oy·s − p + ky·d, in bounds or the term is zero.
                                    let iy =
                                        e.b.build_int_sub(
                                            e.add(e.mul(oy, c.stride[0])?, e.i64(ky * c.dilation[0]))?,
                                            e.i64(c.padding[0]),
                                            "iy",
                                        )
                                        .map_err(cg)?;
                                    let ix =
                                        e.b.build_int_sub(
                                            e.add(e.mul(ox, c.stride[1])?, e.i64(kx * c.dilation[1]))?,
                                            e.i64(c.padding[1]),
                                            "ix",
                                        )
                                        .map_err(cg)?;
                                    let oky =
                                        e.b.build_int_compare(IntPredicate::ULT, iy, e.i64(h), "oky").map_err(cg)?;
                                    let okx =
                                        e.b.build_int_compare(IntPredicate::ULT, ix, e.i64(wd), "okx").map_err(cg)?;
                                    let ok = e.b.build_and(oky, okx, "ok").map_err(cg)?;
                                    let iyc = e.b.build_select(oky, iy, e.i64(0), "iyc").map_err(cg)?.into_int_value();
                                    let ixc = e.b.build_select(okx, ix, e.i64(0), "ixc").map_err(cg)?.into_int_value();
                                    let idx = e.add(e.add(plane, e.add(e.mul(iyc, wd)?, ixc)?)?, e.i64(src))?;
                                    let xv = e.load(a, idx)?;
                                    let xv = e.b.build_select(ok, xv, e.f(0.0), "xv").map_err(cg)?.into_float_value();
                                    let wv = e.load(wg, e.add(wbase, e.i64(ky * kw + kx))?)?;
                                    acc = e.fadd(acc, e.fmul(wv, xv)?)?;
                                }
                            }
                            e.b.build_store(acc_ptr, acc).map_err(cg)?;
                            Ok(())
                        })?;
                        let mut v = e.b.build_load(e.f32t, acc_ptr, "acc").map_err(cg)?.into_float_value();
                        if let Some(act) = c.act {
                            v = e.act(act, v)?;
                        }
                        let o = e.add(
                            e.add(e.mul(e.add(e.mul(b, cout)?, oc)?, oh * ow)?, e.add(e.mul(oy, ow)?, ox)?)?,
                            e.i64(out_off),
                        )?;
                        e.store(a, o, v)
                    })
                })
            })?;
        }
        Op::Dense(d) => {
            let f = shapes[ins[0].index()][1];
            let n = out_shape[0];
            let wg = e.global(&format!("{}.weight", node.name), &wt("weight")?.data);
            let bg = if d.bias { Some(e.global(&format!("{}.bias", node.name), &wt("bias")?.data)) } else { None };
            let src = off(ins[0]);
            e.lp(n * d.out_features, &mut |no| {
                let o = e.b.build_int_unsigned_rem(no, e.i64(d.out_features), "o").map_err(cg)?;
                let r = e.b.build_int_unsigned_div(no, e.i64(d.out_features), "r").map_err(cg)?;
                let acc_ptr = e.b.build_alloca(e.f32t, "acc").map_err(cg)?;
                e.b.build_store(acc_ptr, e.f(0.0)).map_err(cg)?;
                e.lp(f, &mut |i| {
                    let x = e.load(a, e.add(e.add(e.mul(r, f)?, i)?, e.i64(src))?)?;
                    let wv = e.load(wg, e.add(e.mul(o, f)?, i)?)?;
                    let acc = e.b.build_load(e.f32t, acc_ptr, "acc").map_err(cg)?.into_float_value();
                    e.b.build_store(acc_ptr, e.fadd(acc, e.fmul(x, wv)?)?).map_err(cg)?;
                    Ok(())
                })?;
                let mut v = e.b.build_load(e.f32t, acc_ptr, "acc").map_err(cg)?.into_float_value();
                if let Some(bg) = bg {
                    v = e.fadd(v, e.load(bg, o)?)?;
                }
                if let Some(act) = d.act {
                    v = e.act(act, v)?;
                }
                e.store(a, e.add(no, e.i64(out_off))?, v)
            })?;
        }
        Op::AvgPool(p) | Op::MaxPool(p) => {
            let is_max = matches!(node.op, Op::MaxPool(_));
            let s = &shapes[ins[0].index()];
            let (h, wd) = (s[2], s[3]);
            let (oh, ow) = (out_shape[2], out_shape[3]);
            let src = off(ins[0]);
            e.lp(s[0] * s[1], &mut |nc| {
                let plane = e.mul(nc, h * wd)?;
                e.lp(oh, &mut |oy| {
                    e.lp(ow, &mut |ox| {
                        let mut acc = e.f(if is_max { f32::NEG_INFINITY } else { 0.0 });
                        let mut count = e.f(0.0);
                        for ky in 0..p.kernel[0] {
                            for kx in 0..p.kernel[1] {
                                let iy =
                                    e.b.build_int_sub(
                                        e.add(e.mul(oy, p.stride[0])?, e.i64(ky))?,
                                        e.i64(p.padding[0]),
                                        "iy",
                                    )
                                    .map_err(cg)?;
                                let ix =
                                    e.b.build_int_sub(
                                        e.add(e.mul(ox, p.stride[1])?, e.i64(kx))?,
                                        e.i64(p.padding[1]),
                                        "ix",
                                    )
                                    .map_err(cg)?;
                                let oky = e.b.build_int_compare(IntPredicate::ULT, iy, e.i64(h), "oky").map_err(cg)?;
                                let okx = e.b.build_int_compare(IntPredicate::ULT, ix, e.i64(wd), "okx").map_err(cg)?;
                                let ok = e.b.build_and(oky, okx, "ok").map_err(cg)?;
                                let iyc = e.b.build_select(oky, iy, e.i64(0), "iyc").map_err(cg)?.into_int_value();
                                let ixc = e.b.build_select(okx, ix, e.i64(0), "ixc").map_err(cg)?.into_int_value();
                                let v = e.load(a, e.add(e.add(plane, e.add(e.mul(iyc, wd)?, ixc)?)?, e.i64(src))?)?;
                                let cand = if is_max { e.fmax(acc, v)? } else { e.fadd(acc, v)? };
                                acc = e.b.build_select(ok, cand, acc, "acc").map_err(cg)?.into_float_value();
                                let c1 = e.fadd(count, e.f(1.0))?;
                                count = e.b.build_select(ok, c1, count, "n").map_err(cg)?.into_float_value();
                            }
                        }
                        let v = if is_max {
                            acc
                        } else if p.count_include_pad {
                            e.fdiv(acc, e.f((p.kernel[0] * p.kernel[1]) as f32))?
                        } else {
                            e.fdiv(acc, e.fmax(count, e.f(1.0))?)?
                        };
                        let o = e.add(e.add(e.mul(e.add(e.mul(nc, oh)?, oy)?, ow)?, ox)?, e.i64(out_off))?;
                        e.store(a, o, v)
                    })
                })
            })?;
        }
        Op::GlobalAvgPool => {
            let s = &shapes[ins[0].index()];
            let inner = s[2] * s[3];
            let src = off(ins[0]);
            e.lp(s[0] * s[1], &mut |nc| {
                let acc_ptr = e.b.build_alloca(e.f32t, "acc").map_err(cg)?;
                e.b.build_store(acc_ptr, e.f(0.0)).map_err(cg)?;
                let base = e.mul(nc, inner)?;
                e.lp(inner, &mut |i| {
                    let v = e.load(a, e.add(e.add(base, i)?, e.i64(src))?)?;
                    let acc = e.b.build_load(e.f32t, acc_ptr, "acc").map_err(cg)?.into_float_value();
                    e.b.build_store(acc_ptr, e.fadd(acc, v)?).map_err(cg)?;
                    Ok(())
                })?;
                let acc = e.b.build_load(e.f32t, acc_ptr, "acc").map_err(cg)?.into_float_value();
                e.store(a, e.add(nc, e.i64(out_off))?, e.fdiv(acc, e.f(inner as f32))?)
            })?;
        }
        Op::Softmax => {
            let k = out_shape[1];
            let src = off(ins[0]);
            e.lp(out_shape[0], &mut |r| {
                let base = e.mul(r, k)?;
                let mut m = e.f(f32::NEG_INFINITY);
                for c in 0..k {
                    m = e.fmax(m, e.load(a, e.add(base, e.i64(src + c))?)?)?;
                }
                let mut sum = e.f(0.0);
                let mut exps = Vec::with_capacity(k);
                for c in 0..k {
                    let d = e.b.build_float_sub(e.load(a, e.add(base, e.i64(src + c))?)?, m, "d").map_err(cg)?;
                    let x = e.intrinsic("llvm.exp.f32", &[d])?;
                    sum = e.fadd(sum, x)?;
                    exps.push(x);
                }
                for (c, x) in exps.into_iter().enumerate() {
                    e.store(a, e.add(base, e.i64(out_off + c))?, e.fdiv(x, sum)?)?;
                }
                Ok(())
            })?;
        }
        Op::Concat(cc) => {
            let outer: usize = out_shape[..cc.axis].iter().product();
            let out_chunk: usize = out_shape[cc.axis..].iter().product();
            let mut at = 0usize;
            for &i in ins {
                let chunk: usize = shapes[i.index()][cc.axis..].iter().product();
                let src = off(i);
                let dst = at;
                e.lp(outer, &mut |o| {
                    e.lp(chunk, &mut |j| {
                        let v = e.load(a, e.add(e.add(e.mul(o, chunk)?, j)?, e.i64(src))?)?;
                        e.store(a, e.add(e.add(e.mul(o, out_chunk)?, j)?, e.i64(out_off + dst))?, v)
                    })
                })?;
                at += chunk;
            }
        }
        Op::SliceChannels(sl) => {
            let s = &shapes[ins[0].index()];
            let inner: usize = s[2..].iter().product();
            let (c, cn) = (s[1], sl.end - sl.start);
            let src = off(ins[0]);
            e.lp(s[0], &mut |b| {
                e.lp(cn * inner, &mut |j| {
                    let v = e.load(a, e.add(e.add(e.mul(b, c * inner)?, j)?, e.i64(src + sl.start * inner))?)?;
                    e.store(a, e.add(e.add(e.mul(b, cn * inner)?, j)?, e.i64(out_off))?, v)
                })
            })?;
        }
        Op::ChannelShuffle(cs) => {
            let (n, c) = (out_shape[0], out_shape[1]);
            let inner = out_shape[2] * out_shape[3];
            let per = c / cs.groups;
            let src = off(ins[0]);
            for b in 0..n {
                for gi in 0..cs.groups {
                    for j in 0..per {
                        let s0 = src + (b * c + gi * per + j) * inner;
                        let d0 = out_off + (b * c + j * cs.groups + gi) * inner;
                        e.lp(inner, &mut |i| {
                            let v = e.load(a, e.add(i, e.i64(s0))?)?;
                            e.store(a, e.add(i, e.i64(d0))?, v)
                        })?;
                    }
                }
            }
        }
        Op::Gate(_) => {
            // The driver decided; the value is the body's when open, else the skip's. The body
            // is only computed when open, so read the decision again from the logit or the
            // probability.
            let Op::Gate(gt) = &node.op else { unreachable!("matched") };
            let n = numel(out_shape);
            let (skip, body) = (off(ins[0]), off(ins[1]));
            let open = match gt.decision {
                GateDecision::Logit => {
                    let v = e.load(a, e.i64(off(ins[2])))?;
                    e.b.build_float_compare(FloatPredicate::OGT, v, e.f(0.0), "open").map_err(cg)?
                }
                GateDecision::External { probability } => {
                    e.ctx.bool_type().const_int(u64::from(probability >= 0.5), false)
                }
            };
            let src = e.b.build_select(open, e.i64(body), e.i64(skip), "src").map_err(cg)?.into_int_value();
            e.lp(n, &mut |i| {
                let v = e.load(a, e.add(i, src)?)?;
                e.store(a, e.add(i, e.i64(out_off))?, v)
            })?;
        }
        Op::Choice(_) => return Err(CodegenError("a supernet cannot be compiled; select a subnet".into())),
    }
    Ok(())
}

/// LLVM optimisation level of the IR pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opt {
    /// `default<O1>`: quick to compile (tests).
    O1,
    /// `default<O3>`: for deployment and measurement.
    O3,
}

/// Optimises a module for a target machine.
fn optimise(module: &Module<'_>, tm: &TargetMachine, opt: Opt) -> Result<()> {
    let pipeline = match opt {
        Opt::O1 => "default<O1>",
        Opt::O3 => "default<O3>",
    };
    module.run_passes(pipeline, tm, PassBuilderOptions::create()).map_err(|e| CodegenError(format!("LLVM passes: {e}")))
}

fn host_machine() -> Result<TargetMachine> {
    Target::initialize_native(&InitializationConfig::default()).map_err(CodegenError)?;
    let triple = TargetMachine::get_default_triple();
    let target = Target::from_triple(&triple).map_err(cg)?;
    let cpu = TargetMachine::get_host_cpu_name().to_string();
    let features = TargetMachine::get_host_cpu_features().to_string();
    target
        .create_target_machine(
            &triple,
            &cpu,
            &features,
            OptimizationLevel::Aggressive,
            RelocMode::Default,
            CodeModel::JITDefault,
        )
        .ok_or_else(|| CodegenError("cannot create a host target machine".into()))
}

type InferFn = unsafe extern "C" fn(*const f32, *mut f32, *mut f32) -> i32;
type SetFn = unsafe extern "C" fn(i32, f32);

/// A graph compiled for the host, ready to run.
pub struct Jit {
    // Field order matters: the function handles borrow from the engine, which borrows from
    // the context; they are dropped in this order.
    infer: JitFunction<'static, InferFn>,
    set: JitFunction<'static, SetFn>,
    _engine: inkwell::execution_engine::ExecutionEngine<'static>,
    _context: &'static Context,
    plan: ArenaPlan,
    input_len: usize,
    output_len: usize,
    exits: usize,
}

impl Jit {
    /// Compiles a concrete graph with its weights for the host.
    pub fn new(graph: &Graph, weights: &Weights, opt: Opt) -> Result<Jit> {
        // The context must outlive the engine and the functions: leak it (one per compiled
        // graph; tests and measurements compile a bounded number).
        let context: &'static Context = Box::leak(Box::new(Context::create()));
        let module = context.create_module("nasc");
        let plan = lower(context, &module, graph, weights, "net")?;
        let tm = host_machine()?;
        module.set_triple(&tm.get_triple());
        module.set_data_layout(&tm.get_target_data().get_data_layout());
        optimise(&module, &tm, opt)?;
        let engine = module
            .create_jit_execution_engine(OptimizationLevel::Aggressive)
            .map_err(|e| CodegenError(e.to_string()))?;
        let infer = unsafe { engine.get_function::<InferFn>("net_infer") }.map_err(cg)?;
        let set = unsafe { engine.get_function::<SetFn>("net_set_threshold") }.map_err(cg)?;
        let shapes = graph.infer_shapes().map_err(cg)?;
        let input_len = numel(&shapes[graph.input_node().map_err(cg)?.index()]);
        let out = graph.output_node().map_err(cg)?;
        let output_len = numel(&shapes[graph.inputs(out)[0].index()]);
        Ok(Jit {
            infer,
            set,
            _engine: engine,
            _context: context,
            plan,
            input_len,
            output_len,
            exits: graph.exits().len(),
        })
    }

    /// The arena plan.
    pub fn arena(&self) -> &ArenaPlan {
        &self.plan
    }

    /// Overrides exit `k`'s threshold.
    pub fn set_threshold(&self, k: usize, theta: f32) {
        if k < self.exits {
            unsafe { self.set.call(k as i32, theta) }
        }
    }

    /// Runs on an input of the graph's input size; returns the output and the exit taken.
    pub fn run(&self, input: &[f32]) -> Result<(Vec<f32>, usize)> {
        if input.len() != self.input_len {
            return Err(CodegenError(format!(
                "input has {} values, the network takes {}",
                input.len(),
                self.input_len
            )));
        }
        let mut out = vec![0.0f32; self.output_len];
        let mut arena = vec![0.0f32; self.plan.elements];
        let k = unsafe { self.infer.call(input.as_ptr(), out.as_mut_ptr(), arena.as_mut_ptr()) };
        Ok((out, k as usize))
    }
}

/// What [`emit`] writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emit {
    /// An object file `NAME.o`.
    Object,
    /// Assembly `NAME.s`.
    Assembly,
    /// LLVM IR `NAME.ll`.
    LlvmIr,
    /// The C header `NAME.h`.
    Header,
}

/// A CPU to compile for: LLVM triple, cpu name and features.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Machine {
    /// LLVM triple.
    pub triple: String,
    /// LLVM cpu name.
    pub cpu: String,
    /// LLVM feature string.
    pub features: String,
}

/// Compiles a graph for a machine and writes the requested artifacts into `dir` as
/// `NAME.{o,s,ll,h}`. Deterministic: the same graph, weights and machine give the same bytes.
/// Returns the arena plan and the files written.
pub fn emit(
    graph: &Graph,
    weights: &Weights,
    name: &str,
    machine: &Machine,
    what: &[Emit],
    dir: &Path,
) -> Result<(ArenaPlan, Vec<std::path::PathBuf>)> {
    if name.is_empty()
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        return Err(CodegenError(format!("`{name}` is not a C identifier")));
    }
    Target::initialize_all(&InitializationConfig::default());
    let triple = TargetTriple::create(&machine.triple);
    let target = Target::from_triple(&triple).map_err(|e| CodegenError(format!("triple {}: {e}", machine.triple)))?;
    let tm = target
        .create_target_machine(
            &triple,
            &machine.cpu,
            &machine.features,
            OptimizationLevel::Aggressive,
            RelocMode::PIC,
            CodeModel::Default,
        )
        .ok_or_else(|| {
            CodegenError(format!("LLVM cannot target {} / {} / {}", machine.triple, machine.cpu, machine.features))
        })?;
    let context = Context::create();
    let module = context.create_module(name);
    module.set_triple(&triple);
    module.set_data_layout(&tm.get_target_data().get_data_layout());
    let plan = lower(&context, &module, graph, weights, name)?;
    optimise(&module, &tm, Opt::O3)?;
    let shapes = graph.infer_shapes().map_err(cg)?;
    let mut files = Vec::new();
    for w in what {
        let (ext, bytes): (&str, Vec<u8>) = match w {
            Emit::Object => {
                ("o", tm.write_to_memory_buffer(&module, FileType::Object).map_err(cg)?.as_slice().to_vec())
            }
            Emit::Assembly => {
                ("s", tm.write_to_memory_buffer(&module, FileType::Assembly).map_err(cg)?.as_slice().to_vec())
            }
            Emit::LlvmIr => ("ll", module.print_to_string().to_bytes().to_vec()),
            Emit::Header => ("h", header(graph, &shapes, name, &plan)?.into_bytes()),
        };
        let path = dir.join(format!("{name}.{ext}"));
        std::fs::write(&path, bytes).map_err(|e| CodegenError(format!("{}: {e}", path.display())))?;
        files.push(path);
    }
    Ok((plan, files))
}

fn header(graph: &Graph, shapes: &[Shape], name: &str, plan: &ArenaPlan) -> Result<String> {
    let inp = graph.input_node().map_err(cg)?;
    let out = graph.output_node().map_err(cg)?;
    let up = name.to_ascii_uppercase();
    let exits: Vec<String> = graph.exits().iter().map(|&e| graph.node(e).name.clone()).collect();
    Ok(format!(
        "/* Generated by nasc: {name}. Input {:?}, output {:?}. */\n#ifndef {up}_H\n#define {up}_H\n#include <stdint.h>\n\n#define {up}_INPUT_SIZE {}\n#define {up}_OUTPUT_SIZE {}\n#define {up}_ARENA_BYTES {}\n#define {up}_EXITS {} /* {} */\n\n/* Runs the network; returns the exit taken (0..EXITS-1), or EXITS for the final output. */\nint32_t {name}_infer(const float *input, float *output, void *arena);\n/* Overrides exit `exit`'s threshold. */\nvoid {name}_set_threshold(int32_t exit, float theta);\n\n#endif\n",
        shapes[inp.index()],
        shapes[graph.inputs(out)[0].index()],
        numel(&shapes[inp.index()]),
        numel(&shapes[graph.inputs(out)[0].index()]),
        plan.bytes(),
        exits.len(),
        exits.join(", ")
    ))
}
