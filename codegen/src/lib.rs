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
//! decision. Kernels read the input where the caller has it, and the kernel that computes the
//! output writes it straight into `output` (an exit's scores are copied there when it fires),
//! so `input` and `output` must not overlap. [`Jit`] runs it on the host; [`emit`] writes
//! objects, assembly, LLVM IR and a C header for any CPU target.
//!
//! **Architecture Invariant:** the only crate linking LLVM; it consumes concrete graphs from
//! `ir` and knows nothing of cost models. Unsafe code is confined to building GEPs and calling
//! the JIT-compiled driver, whose buffers this crate sizes itself.
#![warn(missing_docs)]
#![allow(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::path::Path;

use inkwell::attributes::{Attribute, AttributeLoc};
use inkwell::builder::Builder;
use inkwell::context::Context;
use inkwell::execution_engine::JitFunction;
use inkwell::module::{Linkage, Module};
use inkwell::passes::PassBuilderOptions;
use inkwell::targets::{CodeModel, FileType, InitializationConfig, RelocMode, Target, TargetMachine, TargetTriple};
use inkwell::types::{BasicType, BasicTypeEnum, FloatType, VectorType};
use inkwell::values::{
    BasicValue, BasicValueEnum, FloatValue, FunctionValue, InstructionOpcode, IntValue, PointerValue, VectorValue,
};
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
    /// The largest scratch one kernel keeps on the caller's stack, in bytes (set by [`lower`]).
    pub stack_bytes: usize,
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
    let rep: Vec<NodeId> = graph.node_ids().collect();
    plan_arena_fused(graph, shapes, order, &rep)
}

/// [`plan_arena`] when kernels are fused: `rep[n]` is the node whose kernel computes `n`'s
/// value (itself unless `n` was absorbed into a producer's kernel). A fused chain shares one
/// slot, live until the last consumer of any of its nodes; absorbed nodes are not in `order`.
fn plan_arena_fused(graph: &Graph, shapes: &[Shape], order: &[NodeId], rep: &[NodeId]) -> ArenaPlan {
    let n = graph.len();
    let pos: Vec<usize> = {
        let mut p = vec![usize::MAX; n];
        for (i, id) in order.iter().enumerate() {
            p[id.index()] = i;
        }
        p
    };
    let mut last = vec![0usize; n];
    // A value is read by every kernel that computes one of its consumers (a fused residual
    // sum reads its other input in its producer's kernel).
    for id in graph.node_ids() {
        let at = pos[rep[id.index()].index()];
        if at == usize::MAX {
            continue;
        }
        for &i in graph.inputs(id) {
            let r = rep[i.index()].index();
            last[r] = last[r].max(at);
        }
    }
    for id in graph.node_ids() {
        // Sinks' values are read by the driver after the run: keep them to the end.
        if graph.node(id).op.is_sink() {
            last[rep[id.index()].index()] = usize::MAX;
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
    for id in graph.node_ids() {
        if rep[id.index()] != id {
            offsets[id.index()] = offsets[rep[id.index()].index()];
        }
    }
    ArenaPlan { offsets, elements: top.max(1), stack_bytes: 0 }
}

/// Kernel fusion: a convolution without its own activation absorbs the batch norm and then
/// the activation that are its only consumers (and have the same gate guards), so one kernel
/// computes the chain with the norm folded into its weights and the activation applied as each
/// output plane is finished.
#[derive(Clone, Debug, Default)]
struct Fusion {
    /// The node whose kernel computes each node.
    rep: Vec<NodeId>,
    /// A fused convolution's batch norm.
    bn: BTreeMap<usize, NodeId>,
    /// A fused convolution's activation.
    act: BTreeMap<usize, Activation>,
    /// A fused residual sum: the other input of the `add` that consumes a 1×1 convolution's
    /// chain, added to each output before its store.
    residual: BTreeMap<usize, NodeId>,
}

fn fuse(g: &Graph, shapes: &[Shape], bodies: &[Vec<bool>]) -> Fusion {
    let mut f = Fusion { rep: g.node_ids().collect(), ..Fusion::default() };
    let same_guards = |a: NodeId, b: NodeId| bodies.iter().all(|m| m[a.index()] == m[b.index()]);
    let sole = |n: NodeId| -> Option<NodeId> {
        let c = g.consumers(n);
        (c.len() == 1 && g.inputs(c[0]).len() == 1 && same_guards(n, c[0])).then(|| c[0])
    };
    for head in g.node_ids() {
        let Op::Conv2d(c) = &g.node(head).op else { continue };
        if c.act.is_some() {
            continue;
        }
        let mut tail = head;
        if let Some(next) = sole(tail) {
            if matches!(g.node(next).op, Op::BatchNorm(_)) {
                f.bn.insert(head.index(), next);
                f.rep[next.index()] = head;
                tail = next;
            }
        }
        if let Some(next) = sole(tail) {
            if let Some(a) = g.node(next).op.as_activation() {
                f.act.insert(head.index(), a);
                f.rep[next.index()] = head;
                tail = next;
            }
        }
        // A residual sum of a register-tiled 1×1 convolution (a bottleneck's projection) with
        // a value computed before it: added in registers, as the outputs are stored.
        let consumers = g.consumers(tail);
        let [add] = consumers[..] else { continue };
        // `add` consumes `tail`: its other input is whichever is not `tail`.
        let other = match *g.inputs(add) {
            [a, b] if matches!(g.node(add).op, Op::Add) && a != b => {
                if a == tail {
                    b
                } else {
                    a
                }
            }
            _ => continue,
        };
        let (x, y) = (&shapes[g.inputs(head)[0].index()], &shapes[head.index()]);
        let tiled = is_pointwise(c, x, y) && y[2] * y[3] >= TILE_P;
        if tiled && other.index() < head.index() && same_guards(tail, add) && shapes[other.index()] == *y {
            f.residual.insert(head.index(), other);
            f.rep[add.index()] = head;
        }
    }
    // The output and the exits are their inputs' values, which the driver copies out from
    // where their kernels left them: no kernel and no slot of their own.
    for id in g.node_ids() {
        if g.node(id).op.is_sink() {
            f.rep[id.index()] = f.rep[g.inputs(id)[0].index()];
        }
    }
    f
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
    /// The network's input, in a node's kernel (every kernel reads it in place).
    input: Option<PointerValue<'ctx>>,
    /// The caller's output buffer, in the kernel that computes the network's output (it
    /// writes there instead of the arena).
    output: Option<PointerValue<'ctx>>,
    /// The largest stack scratch of a kernel so far, in bytes.
    scratch: &'a Cell<usize>,
    /// Kernels shared by every node of the same operator and shapes, by key.
    shared: &'a RefCell<BTreeMap<String, FunctionValue<'ctx>>>,
    /// External weights: the global holding the caller's weights pointer, and the blob laid
    /// out so far (each tensor at the next 16-float boundary). `None`: weights are constants.
    external: &'a RefCell<Option<(PointerValue<'ctx>, Vec<f32>)>>,
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
    /// Copies an `h × w` plane from `src[from..]` (rows `w` apart) to `dst[to..]` with rows
    /// `pitch` apart: the interior of a bordered scratch plane.
    fn copy_plane(
        &self,
        (src, from): (PointerValue<'ctx>, IntValue<'ctx>),
        (dst, to): (PointerValue<'ctx>, IntValue<'ctx>),
        [h, w]: [usize; 2],
        pitch: usize,
    ) -> Result<()> {
        self.lp(h, &mut |y| {
            let (s, d) = (self.add(from, self.mul(y, w)?)?, self.add(to, self.mul(y, pitch)?)?);
            self.lp(w, &mut |x| self.store(dst, self.add(d, x)?, self.load(src, self.add(s, x)?)?))
        })
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
    fn fadd(&self, a: FloatValue<'ctx>, b: FloatValue<'ctx>) -> Result<FloatValue<'ctx>> {
        self.b.build_float_add(a, b, "s").map_err(cg)
    }
    fn fmul(&self, a: FloatValue<'ctx>, b: FloatValue<'ctx>) -> Result<FloatValue<'ctx>> {
        self.b.build_float_mul(a, b, "p").map_err(cg)
    }
    fn fdiv(&self, a: FloatValue<'ctx>, b: FloatValue<'ctx>) -> Result<FloatValue<'ctx>> {
        self.b.build_float_div(a, b, "d").map_err(cg)
    }

    /// The kernel `void f(float *noalias out, const float *noalias in, const float *noalias w,
    /// const float *noalias b)` for `key`, built by `body` the first time (with an emitter
    /// positioned in its entry block) and shared by every node with the same key.
    fn shared_kernel(
        &self,
        key: String,
        body: &dyn Fn(&Emitter<'_, 'ctx>, [PointerValue<'ctx>; 5]) -> Result<()>,
    ) -> Result<FunctionValue<'ctx>> {
        if let Some(&f) = self.shared.borrow().get(&key) {
            return Ok(f);
        }
        let ptr = self.ctx.ptr_type(inkwell::AddressSpace::default());
        let n = self.shared.borrow().len();
        let t = self.ctx.void_type().fn_type(&[ptr.into(); 5], false);
        let f = self.module.add_function(&format!("nasc_kernel{n}"), t, Some(Linkage::Internal));
        let attr = |name: &str| self.ctx.create_enum_attribute(Attribute::get_named_enum_kind_id(name), 0);
        f.add_attribute(AttributeLoc::Function, attr("noinline"));
        // No calls to memcpy or memset for copy loops: the kernels' copies are short rows,
        // where a library call costs more than the copy.
        f.add_attribute(AttributeLoc::Function, self.ctx.create_string_attribute("no-builtins", ""));
        for i in 0..5 {
            f.add_attribute(AttributeLoc::Param(i), attr("noalias"));
        }
        let params: Vec<PointerValue<'ctx>> =
            (0..5).map(|i| f.get_nth_param(i).expect("param").into_pointer_value()).collect();
        let e = Emitter {
            ctx: self.ctx,
            module: self.module,
            b: self.ctx.create_builder(),
            f32t: self.f32t,
            func: f,
            arena: params[0],
            input: None,
            output: None,
            shared: self.shared,
            scratch: self.scratch,
            external: self.external,
        };
        let entry = self.ctx.append_basic_block(f, "entry");
        e.b.position_at_end(entry);
        body(&e, [params[0], params[1], params[2], params[3], params[4]])?;
        e.b.build_return(None).map_err(cg)?;
        self.shared.borrow_mut().insert(key, f);
        Ok(f)
    }

    /// A stack slot of type `ty` in the function's entry block (where SROA promotes scalars and
    /// vectors to registers; an alloca inside a loop would grow the stack every iteration).
    fn entry_alloca(&self, ty: impl BasicType<'ctx>, name: &str) -> Result<PointerValue<'ctx>> {
        let entry = self.func.get_first_basic_block().ok_or_else(|| CodegenError("no entry block".into()))?;
        let tb = self.ctx.create_builder();
        match entry.get_first_instruction() {
            Some(i) => tb.position_before(&i),
            None => tb.position_at_end(entry),
        }
        tb.build_alloca(ty, name).map_err(cg)
    }

    /// A stack array of `len` f32 for a kernel's scratch (see [`Emitter::entry_alloca`]),
    /// counted in the plan's `stack_bytes`.
    fn scratch_array(&self, len: usize, name: &str) -> Result<PointerValue<'ctx>> {
        self.scratch.set(self.scratch.get().max(len * 4));
        self.entry_alloca(self.f32t.array_type(len as u32), name)
    }

    /// Several scratch arrays of one kernel, `(f32 length, name)` each: separate allocations
    /// (LLVM then knows they do not overlap), counted together in the plan's `stack_bytes`.
    fn scratch_arrays<const N: usize>(&self, arrays: [(usize, &str); N]) -> Result<[PointerValue<'ctx>; N]> {
        let total: usize = arrays.iter().map(|(len, _)| len).sum();
        self.scratch.set(self.scratch.get().max(total * 4));
        let mut out = Vec::with_capacity(N);
        for (len, name) in arrays {
            out.push(self.entry_alloca(self.f32t.array_type(len as u32), name)?);
        }
        out.try_into().map_err(|_| CodegenError("scratch arrays".into()))
    }

    /// A stack slot for one f32 (see [`Emitter::entry_alloca`]).
    fn slot(&self) -> Result<PointerValue<'ctx>> {
        self.entry_alloca(self.f32t, "acc")
    }

    /// `a·b + c`, which LLVM may contract into one fused multiply-add.
    fn fmuladd(&self, a: FloatValue<'ctx>, b: FloatValue<'ctx>, c: FloatValue<'ctx>) -> Result<FloatValue<'ctx>> {
        self.intrinsic("llvm.fmuladd.f32", &[a, b, c])
    }

    /// Marks a floating-point reduction step reassociable (and contractible), so the loop
    /// vectoriser may split the sum into lanes; the result differs from the sequential sum by
    /// rounding only.
    fn reassoc(&self, v: FloatValue<'ctx>) -> FloatValue<'ctx> {
        if let Some(i) = v.as_instruction() {
            // LLVMFastMathAllowReassoc | LLVMFastMathAllowContract.
            i.set_fast_math_flags(1 | 32);
        }
        v
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
        Ok(self.act_any(a, x.into())?.into_float_value())
    }

    /// [`Emitter::act`] on a vector of f32, lane by lane.
    fn vact(&self, a: Activation, x: VectorValue<'ctx>) -> Result<VectorValue<'ctx>> {
        Ok(self.act_any(a, x.into())?.into_vector_value())
    }

    /// An activation of an f32 or of a vector of f32 (the same operations on every lane).
    fn act_any(&self, a: Activation, x: BasicValueEnum<'ctx>) -> Result<BasicValueEnum<'ctx>> {
        let ty = x.get_type();
        let c = |v: f32| -> BasicValueEnum<'ctx> {
            let s = self.f32t.const_float(f64::from(v));
            match ty {
                BasicTypeEnum::VectorType(vt) => {
                    VectorType::const_vector(&vec![s; vt.get_size() as usize]).as_basic_value_enum()
                }
                _ => s.as_basic_value_enum(),
            }
        };
        let call = |name: &str, args: &[BasicValueEnum<'ctx>]| self.call_any(name, ty, args);
        let bin = |op: InstructionOpcode, l: BasicValueEnum<'ctx>, r: BasicValueEnum<'ctx>| {
            self.b.build_binop(op, l, r, "a").map_err(cg)
        };
        let (add, mul, div) = (InstructionOpcode::FAdd, InstructionOpcode::FMul, InstructionOpcode::FDiv);
        let neg = |v: BasicValueEnum<'ctx>| -> Result<BasicValueEnum<'ctx>> {
            match v {
                BasicValueEnum::VectorValue(v) => self.b.build_float_neg(v, "n").map(|v| v.into()).map_err(cg),
                _ => self.b.build_float_neg(v.into_float_value(), "n").map(|v| v.into()).map_err(cg),
            }
        };
        let max = |l, r| call("llvm.maxnum", &[l, r]);
        let min = |l, r| call("llvm.minnum", &[l, r]);
        let hsig = |x| -> Result<BasicValueEnum<'ctx>> {
            let t = min(max(bin(add, x, c(3.0))?, c(0.0))?, c(6.0))?;
            bin(div, t, c(6.0))
        };
        // 1 + e^(−x)
        let one_exp = |x| -> Result<BasicValueEnum<'ctx>> { bin(add, c(1.0), call("llvm.exp", &[neg(x)?])?) };
        match a {
            Activation::Relu => max(x, c(0.0)),
            Activation::Relu6 => min(max(x, c(0.0))?, c(6.0)),
            Activation::Hswish => bin(mul, x, hsig(x)?),
            Activation::Hsigmoid => hsig(x),
            Activation::Sigmoid => bin(div, c(1.0), one_exp(x)?),
            Activation::Swish => bin(div, x, one_exp(x)?),
        }
    }

    /// The overloaded intrinsic `name` (e.g. `llvm.fmuladd`) at the type `ty` of its operands
    /// and result: f32 or a vector of f32.
    fn call_any(
        &self,
        name: &str,
        ty: BasicTypeEnum<'ctx>,
        args: &[BasicValueEnum<'ctx>],
    ) -> Result<BasicValueEnum<'ctx>> {
        let full = match ty {
            BasicTypeEnum::VectorType(vt) => format!("{name}.v{}f32", vt.get_size()),
            _ => format!("{name}.f32"),
        };
        let f = self.module.get_function(&full).unwrap_or_else(|| {
            let params: Vec<_> = args.iter().map(|_| ty.into()).collect();
            self.module.add_function(&full, ty.fn_type(&params, false), None)
        });
        let a: Vec<_> = args.iter().map(|&v| v.into()).collect();
        match self.b.build_call(f, &a, "i").map_err(cg)?.try_as_basic_value() {
            inkwell::values::ValueKind::Basic(v) => Ok(v),
            _ => Err(CodegenError(format!("{full} returned no value"))),
        }
    }

    /// A vector of [`LANES`] f32 at `base[idx..]` (unaligned).
    fn vload(&self, base: PointerValue<'ctx>, idx: IntValue<'ctx>) -> Result<VectorValue<'ctx>> {
        let v = self.b.build_load(self.f32t.vec_type(LANES), self.ptr_at(base, idx)?, "vx").map_err(cg)?;
        v.as_instruction_value().expect("a load").set_alignment(4).map_err(cg)?;
        Ok(v.into_vector_value())
    }

    /// Stores a vector at `base[idx..]` (unaligned).
    fn vstore(&self, base: PointerValue<'ctx>, idx: IntValue<'ctx>, v: VectorValue<'ctx>) -> Result<()> {
        self.b.build_store(self.ptr_at(base, idx)?, v).map_err(cg)?.set_alignment(4).map_err(cg)?;
        Ok(())
    }

    /// `v` in every lane of a vector of [`LANES`].
    fn splat(&self, v: FloatValue<'ctx>) -> Result<VectorValue<'ctx>> {
        let vt = self.f32t.vec_type(LANES);
        let i32t = self.ctx.i32_type();
        let one = self.b.build_insert_element(vt.get_poison(), v, i32t.const_zero(), "s").map_err(cg)?;
        self.b.build_shuffle_vector(one, vt.get_poison(), i32t.vec_type(LANES).const_zero(), "splat").map_err(cg)
    }

    /// `if cond { then() } else { otherwise() }` in the current function.
    fn if_else(
        &self,
        cond: IntValue<'ctx>,
        then: &mut dyn FnMut() -> Result<()>,
        otherwise: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        let (t, o, join) = (
            self.ctx.append_basic_block(self.func, "then"),
            self.ctx.append_basic_block(self.func, "else"),
            self.ctx.append_basic_block(self.func, "join"),
        );
        self.b.build_conditional_branch(cond, t, o).map_err(cg)?;
        self.b.position_at_end(t);
        then()?;
        self.b.build_unconditional_branch(join).map_err(cg)?;
        self.b.position_at_end(o);
        otherwise()?;
        self.b.build_unconditional_branch(join).map_err(cg)?;
        self.b.position_at_end(join);
        Ok(())
    }

    /// [`Emitter::call_any`] on vectors.
    fn vintrinsic(&self, name: &str, args: &[VectorValue<'ctx>]) -> Result<VectorValue<'ctx>> {
        let a: Vec<BasicValueEnum<'ctx>> = args.iter().map(|&v| v.into()).collect();
        Ok(self.call_any(name, args[0].get_type().into(), &a)?.into_vector_value())
    }

    /// A weight tensor (or a constant table, such as an average pool's divisors): a constant
    /// global array, or with external weights its place in the caller's blob (loaded from the
    /// pointer `NAME_set_weights` stored).
    fn global(&self, name: &str, data: &[f32]) -> PointerValue<'ctx> {
        if let Some((ptr_global, blob)) = self.external.borrow_mut().as_mut() {
            let at = blob.len().div_ceil(16) * 16;
            blob.resize(at, 0.0);
            blob.extend_from_slice(data);
            let ptr_t = self.ctx.ptr_type(inkwell::AddressSpace::default());
            let base = self.b.build_load(ptr_t, *ptr_global, "weights").expect("a load").into_pointer_value();
            return unsafe { self.b.build_in_bounds_gep(self.f32t, base, &[self.i64(at)], name) }.expect("a gep");
        }
        // Built from the raw little-endian bytes (every supported target is little-endian): one
        // ConstantDataArray, instead of one uniqued ConstantFP per weight, which made lowering
        // a MobileNet-sized network take seconds.
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        let arr = self.ctx.const_string(&bytes, false);
        let g = self.module.add_global(arr.get_type(), None, name);
        g.set_initializer(&arr);
        g.set_alignment(64);
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
    Ok(lower_with(ctx, module, graph, weights, name, false)?.0)
}

/// [`lower`], optionally with external weights: then the module also defines
/// `void NAME_set_weights(const float *weights)`, the kernels read their weights from that
/// pointer, and the returned blob (f32, each tensor 64-byte aligned) is what it must point to.
pub fn lower_with<'ctx>(
    ctx: &'ctx Context,
    module: &Module<'ctx>,
    graph: &Graph,
    weights: &Weights,
    name: &str,
    external_weights: bool,
) -> Result<(ArenaPlan, Vec<f32>)> {
    let shapes = graph.validate().map_err(cg)?;
    weights.check(graph).map_err(cg)?;
    if let Some(n) = graph.node_ids().map(|id| graph.node(id)).find(|n| n.precision != nasc_ir::Precision::F32) {
        return Err(CodegenError(format!(
            "node `{}`: int8 layers are priced by the cost model but not compiled (the code generator emits f32 kernels)",
            n.name
        )));
    }
    let steps = schedule(graph)?;
    let bodies: Vec<Vec<bool>> = graph.gates().iter().map(|&gt| graph.gate_body_mask(gt)).collect();
    let fusion = fuse(graph, &shapes, &bodies);
    let order: Vec<NodeId> = steps
        .iter()
        .filter_map(|s| if let Step::Run(n, _) = s { Some(*n) } else { None })
        .filter(|n| fusion.rep[n.index()] == *n)
        .collect();
    let mut plan = plan_arena_fused(graph, &shapes, &order, &fusion.rep);
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

    // The kernel that computes the network's output writes it to the caller's buffer, unless
    // something else reads it (an exit's scores, a later node) or it is the input itself.
    let final_value = graph.inputs(graph.output_node().map_err(cg)?)[0];
    let writer = fusion.rep[final_value.index()];
    let direct_out = !matches!(graph.node(writer).op, Op::Input(_))
        && graph.node_ids().filter(|&n| fusion.rep[n.index()] == writer).all(|n| {
            graph
                .consumers(n)
                .iter()
                .all(|&c| fusion.rep[c.index()] == writer && !matches!(graph.node(c).op, Op::Exit(_)))
        });

    // One function per node: `void node(float *arena, const float *input, float *output)`.
    let kernel_t = void.fn_type(&[ptr.into(), ptr.into(), ptr.into()], false);
    let mut kernels: BTreeMap<usize, FunctionValue<'_>> = BTreeMap::new();
    let shared = RefCell::new(BTreeMap::new());
    let scratch = Cell::new(0);
    let external = RefCell::new(None);
    if external_weights {
        let wp = module.add_global(ptr, None, &format!("{name}_weights"));
        wp.set_initializer(&ptr.const_null());
        wp.set_linkage(Linkage::Internal);
        let setter = module.add_function(&format!("{name}_set_weights"), void.fn_type(&[ptr.into()], false), None);
        let b = ctx.create_builder();
        b.position_at_end(ctx.append_basic_block(setter, "entry"));
        b.build_store(wp.as_pointer_value(), setter.get_nth_param(0).expect("param")).map_err(cg)?;
        b.build_return(None).map_err(cg)?;
        *external.borrow_mut() = Some((wp.as_pointer_value(), Vec::new()));
    }
    for &id in &order {
        let node = graph.node(id);
        if matches!(node.op, Op::Input(_)) {
            continue;
        }
        let f = module.add_function(&format!("{name}_k{}", id.index()), kernel_t, Some(Linkage::Internal));
        // Kept out of line: one driver with every kernel inlined is a single function of tens
        // of thousands of instructions, which LLVM's optimiser and register allocator handle
        // several times slower than the same code as separate functions.
        let noinline = Attribute::get_named_enum_kind_id("noinline");
        f.add_attribute(AttributeLoc::Function, ctx.create_enum_attribute(noinline, 0));
        let e = Emitter {
            ctx,
            module,
            b: ctx.create_builder(),
            f32t,
            func: f,
            arena: f.get_nth_param(0).expect("arena").into_pointer_value(),
            input: Some(f.get_nth_param(1).expect("input").into_pointer_value()),
            output: (direct_out && id == writer).then(|| f.get_nth_param(2).expect("output").into_pointer_value()),
            shared: &shared,
            scratch: &scratch,
            external: &external,
        };
        let entry = ctx.append_basic_block(f, "entry");
        e.b.position_at_end(entry);
        kernel(&e, graph, weights, &shapes, &plan, &fusion, id)
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
        input: None,
        output: None,
        shared: &shared,
        scratch: &scratch,
        external: &external,
    };
    let input = drv.get_nth_param(0).expect("input").into_pointer_value();
    let output = drv.get_nth_param(1).expect("output").into_pointer_value();
    let entry = ctx.append_basic_block(drv, "entry");
    e.b.position_at_end(entry);
    let in_id = graph.input_node().map_err(cg)?;
    let in_off = plan.offsets[in_id.index()].expect("input planned");
    // Kernels read the input where the caller has it; the driver reads a copy in the arena
    // (the output or an exit's scores being the input, or a gate's logit).
    let driver_reads = |c: NodeId| {
        let n = graph.node(c);
        n.op.is_sink() || (matches!(n.op, Op::Gate(_)) && graph.inputs(c).get(2) == Some(&in_id))
    };
    if graph.consumers(in_id).into_iter().any(driver_reads) {
        e.lp(numel(&shapes[in_id.index()]), &mut |i| {
            let v = e.load(input, i)?;
            e.store(e.arena, e.add(i, e.i64(in_off))?, v)
        })?;
    }
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
                        e.b.build_call(f, &[e.arena.into(), input.into(), output.into()], "").map_err(cg)?;
                    }
                    Some(c) => {
                        let run = ctx.append_basic_block(drv, "gated");
                        let after = ctx.append_basic_block(drv, "after_gate");
                        e.b.build_conditional_branch(c, run, after).map_err(cg)?;
                        e.b.position_at_end(run);
                        e.b.build_call(f, &[e.arena.into(), input.into(), output.into()], "").map_err(cg)?;
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
    if !direct_out {
        copy_out(&e, final_value)?;
    }
    e.b.build_return(Some(&i32t.const_int(exits.len() as u64, false))).map_err(cg)?;
    module
        .verify()
        .map_err(|m| CodegenError(format!("LLVM verifier: {}", m.to_string().lines().next().unwrap_or(""))))?;
    let blob = external.into_inner().map(|(_, b)| b).unwrap_or_default();
    plan.stack_bytes = scratch.get();
    Ok((plan, blob))
}

/// Max-softmax probability or softmax entropy of `classes` scores at `off`.
fn exit_statistic<'ctx>(e: &Emitter<'_, 'ctx>, rule: ExitRule, off: usize, classes: usize) -> Result<FloatValue<'ctx>> {
    let (_, sum, weighted) = softmax_sums(e, e.arena, e.i64(off), classes)?;
    match rule {
        ExitRule::MaxSoftmax => e.fdiv(e.f(1.0), sum),
        // H = log Σe − Σ p·d with p = e/Σe, d = x − max.
        ExitRule::Entropy => {
            let ln = e.intrinsic("llvm.log.f32", &[sum])?;
            e.b.build_float_sub(ln, e.fdiv(weighted, sum)?, "h").map_err(cg)
        }
    }
}

/// Output channels per register tile of the 1×1 kernel (the last tile of a group may have
/// fewer).
const TILE_OC: usize = 6;
/// f32 lanes per vector of the 1×1 kernel (one AVX2 register, two NEON registers, LMUL 1 at
/// VLEN 256); LLVM legalises the fixed-width vector for each target.
const LANES: u32 = 8;
/// Vectors of output positions per register tile.
const TILE_V: usize = 2;
/// Output positions per register tile.
const TILE_P: usize = TILE_V * LANES as usize;
/// Largest stack panel of packed input rows of the 1×1 kernel, in bytes.
const PANEL_BYTES: usize = 128 * 1024;

/// Rows of input for a tile of the 1×1 kernel: base pointer, offset of the first row, row
/// stride (in f32).
type XRows<'ctx> = (PointerValue<'ctx>, IntValue<'ctx>, usize);

/// Whether a convolution from `x` to `y` (NCHW) is 1×1, stride 1, unpadded: a matrix product
/// over the plane.
fn is_pointwise(c: &nasc_ir::op::Conv2d, x: &[usize], y: &[usize]) -> bool {
    c.kernel == [1, 1] && c.stride == [1, 1] && c.padding == [0, 0] && x[2..] == y[2..]
}

/// Shapes of a 1×1, stride-1, unpadded convolution.
#[derive(Clone, Copy, Debug)]
struct Pointwise {
    n: usize,
    cin: usize,
    cout: usize,
    cin_g: usize,
    cout_g: usize,
    plane: usize,
}

impl Pointwise {
    /// Output-channel tiles of one group: `(first channel in the group, channels)`.
    fn tiles(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (0..self.cout_g).step_by(TILE_OC).map(|oc| (oc, TILE_OC.min(self.cout_g - oc)))
    }

    /// The `[cout][cin_g]` weights rearranged for [`pointwise_tiled`]: per group and tile of
    /// `mr` output channels, `[cin_g][mr]`, so the tile's weights for one input channel are
    /// adjacent. A tile starting at absolute output channel `oc` begins at `oc · cin_g`.
    fn pack(&self, w: &[f32]) -> Vec<f32> {
        let groups = self.cout / self.cout_g;
        let mut out = Vec::with_capacity(w.len());
        for g in 0..groups {
            for (oc, mr) in self.tiles() {
                for icg in 0..self.cin_g {
                    out.extend((0..mr).map(|k| w[(g * self.cout_g + oc + k) * self.cin_g + icg]));
                }
            }
        }
        out
    }
}

/// The `TILE_OC × TILE_V` vector accumulators of a register tile ([`pointwise_tiled`],
/// [`conv_tiled`]): stack slots in the entry block, promoted to registers by SROA.
struct Accumulators<'ctx> {
    slots: Vec<PointerValue<'ctx>>,
}

impl<'ctx> Accumulators<'ctx> {
    fn new(e: &Emitter<'_, 'ctx>) -> Result<Self> {
        let vt = e.f32t.vec_type(LANES);
        Ok(Accumulators { slots: (0..TILE_OC * TILE_V).map(|_| e.entry_alloca(vt, "acc")).collect::<Result<_>>()? })
    }

    fn get(&self, e: &Emitter<'_, 'ctx>, k: usize, j: usize) -> Result<VectorValue<'ctx>> {
        let vt = e.f32t.vec_type(LANES);
        Ok(e.b.build_load(vt, self.slots[k * TILE_V + j], "a").map_err(cg)?.into_vector_value())
    }

    /// Starts `mr × nv` accumulators at the bias of output channels `oc..oc + mr` (or 0).
    fn start(
        &self,
        e: &Emitter<'_, 'ctx>,
        mr: usize,
        nv: usize,
        bias: Option<(PointerValue<'ctx>, IntValue<'ctx>)>,
    ) -> Result<()> {
        for k in 0..mr {
            let v = e.splat(match bias {
                Some((bg, oc)) => e.load(bg, e.add(oc, e.i64(k))?)?,
                None => e.f(0.0),
            })?;
            for j in 0..nv {
                e.b.build_store(self.slots[k * TILE_V + j], v).map_err(cg)?;
            }
        }
        Ok(())
    }

    /// Adds `w(k) · xs[j]` to accumulator `(k, j)` for `k < mr` (`w(k)` broadcast).
    fn step(
        &self,
        e: &Emitter<'_, 'ctx>,
        mr: usize,
        xs: &[VectorValue<'ctx>],
        w: &dyn Fn(usize) -> Result<FloatValue<'ctx>>,
    ) -> Result<()> {
        for k in 0..mr {
            let w = e.splat(w(k)?)?;
            for (j, &x) in xs.iter().enumerate() {
                let r = e.vintrinsic("llvm.fmuladd", &[w, x, self.get(e, k, j)?])?;
                e.b.build_store(self.slots[k * TILE_V + j], r).map_err(cg)?;
            }
        }
        Ok(())
    }

    /// Hands each of the `mr × nv` accumulators, activated, to `store(k, j, value)`.
    fn finish(
        &self,
        e: &Emitter<'_, 'ctx>,
        mr: usize,
        nv: usize,
        act: Option<Activation>,
        store: &mut dyn FnMut(usize, usize, VectorValue<'ctx>) -> Result<()>,
    ) -> Result<()> {
        for k in 0..mr {
            for j in 0..nv {
                let mut a = self.get(e, k, j)?;
                if let Some(act) = act {
                    a = e.vact(act, a)?;
                }
                store(k, j, a)?;
            }
        }
        Ok(())
    }
}

/// A 1×1 convolution as a register-tiled matrix product over weights packed by
/// [`Pointwise::pack`]: for each tile of up to [`TILE_OC`] output channels and [`TILE_P`]
/// positions, `TILE_OC × TILE_V` vector accumulators stay in registers over the whole
/// input-channel loop, so each step is `TILE_V` vector loads of the input, one broadcast per
/// channel from a single cache line of weights and `TILE_OC × TILE_V` fused multiply-adds.
/// The bias starts the accumulators and the activation is applied to them before the one
/// store of each output.
fn pointwise_tiled<'ctx>(
    e: &Emitter<'_, 'ctx>,
    s: Pointwise,
    [op, xp, wg, bg, rp]: [PointerValue<'ctx>; 5],
    has_bias: bool,
    act: Option<Activation>,
    residual: bool,
) -> Result<()> {
    let groups = s.cout / s.cout_g;
    let acc = Accumulators::new(e)?;
    // One register tile: `mr` output channels from absolute channel `oc` of batch `b` times
    // `nv` vectors of positions from `p0`. The input rows come from `xsrc`: `xp` itself (row
    // stride `plane`) or a packed panel.
    let ptile =
        |mr: usize, nv: usize, [b, oc, p0]: [IntValue<'ctx>; 3], (xsrc, xbase, xstride): XRows<'ctx>| -> Result<()> {
            let wbase = e.mul(oc, s.cin_g)?;
            let obase = e.add(e.mul(e.add(e.mul(b, s.cout)?, oc)?, s.plane)?, p0)?;
            acc.start(e, mr, nv, has_bias.then_some((bg, oc)))?;
            e.lp(s.cin_g, &mut |icg| {
                let xrow = e.add(xbase, e.mul(icg, xstride)?)?;
                let xs: Vec<VectorValue<'ctx>> =
                    (0..nv).map(|j| e.vload(xsrc, e.add(xrow, e.i64(j * LANES as usize))?)).collect::<Result<_>>()?;
                let wrow = e.add(wbase, e.mul(icg, mr)?)?;
                acc.step(e, mr, &xs, &|k| e.load(wg, e.add(wrow, e.i64(k))?))
            })?;
            acc.finish(e, mr, nv, act, &mut |k, j, mut a| {
                let at = e.add(obase, e.i64(k * s.plane + j * LANES as usize))?;
                if residual {
                    a = e.b.build_float_add(a, e.vload(rp, at)?, "res").map_err(cg)?;
                }
                e.vstore(op, at, a)
            })
        };
    // Every tile of output channels of a group (from `goc`): full tiles of TILE_OC, then the rest.
    let each_oc = |goc: IntValue<'ctx>, body: &mut dyn FnMut(usize, IntValue<'ctx>) -> Result<()>| -> Result<()> {
        let full = s.cout_g / TILE_OC;
        if full > 0 {
            e.lp(full, &mut |t| body(TILE_OC, e.add(goc, e.mul(t, TILE_OC)?)?))?;
        }
        if s.cout_g % TILE_OC > 0 {
            body(s.cout_g % TILE_OC, e.add(goc, e.i64(full * TILE_OC))?)?;
        }
        Ok(())
    };
    // Every tile of positions: ⌊plane / TILE_P⌋ full tiles, then the rest as one tile of one or
    // two vectors moved back to end at the plane's end, overlapping its predecessor
    // (recomputing a few outputs to identical values), so no scalar remainder is needed.
    let each_p = |body: &mut dyn FnMut(usize, IntValue<'ctx>) -> Result<()>| -> Result<()> {
        e.lp(s.plane / TILE_P, &mut |pb| body(TILE_V, e.mul(pb, TILE_P)?))?;
        let rest = s.plane % TILE_P;
        if rest > 0 {
            let nv = rest.div_ceil(LANES as usize);
            body(nv, e.i64(s.plane - nv * LANES as usize))?;
        }
        Ok(())
    };
    // Blocks of positions, each packed into a panel (per position tile, one row of `nv`
    // vectors per input channel, consecutive) that every output channel tile then streams
    // from L1 or L2 — instead of reading rows `plane` apart wherever the input is. A block is
    // as many tiles as fit in PANEL_BYTES, so the input is read once, in runs of a block per
    // channel, and each channel tile writes runs of a block into its output planes. Without
    // room for one tile's panel, channel tiles go outer and read the input in place.
    let tile_bytes = s.cin_g * TILE_P * 4;
    if tile_bytes > PANEL_BYTES {
        return e.lp(s.n * groups, &mut |bgi| {
            let b = e.b.build_int_unsigned_div(bgi, e.i64(groups), "b").map_err(cg)?;
            let g = e.b.build_int_unsigned_rem(bgi, e.i64(groups), "g").map_err(cg)?;
            let xbase = e.mul(e.add(e.mul(b, s.cin)?, e.mul(g, s.cin_g)?)?, s.plane)?;
            each_oc(e.mul(g, s.cout_g)?, &mut |mr, oc| {
                each_p(&mut |nv, p0| ptile(mr, nv, [b, oc, p0], (xp, e.add(xbase, p0)?, s.plane)))
            })
        });
    }
    let full_tiles = s.plane / TILE_P;
    // Tiles per block: the most that fit, dividing the full tiles evenly (one copy of the
    // block's code serves them all).
    let fit = (PANEL_BYTES / tile_bytes).max(1);
    let per_block = (1..=fit.min(full_tiles.max(1))).rev().find(|d| full_tiles % d == 0).unwrap_or(1);
    let whole = full_tiles / per_block;
    // The rest of the plane: one tile of one or two vectors moved back to end at the plane's
    // end, overlapping its predecessor (recomputing a few outputs to identical values). It
    // joins the last block when the panel has room, so each channel tile's weights are read
    // once per plane rather than once more for the rest — on small planes with many channels
    // (7×7 after 320 or more) that second pass streams the weights from memory again.
    let rest_nv = (s.plane % TILE_P).div_ceil(LANES as usize);
    let rest_joins = rest_nv > 0 && whole > 0 && per_block < fit;
    let panel = e.scratch_array((per_block + usize::from(rest_joins)) * s.cin_g * TILE_P, "panel")?;
    // `tiles` tiles of `nv` vectors from position `p0`, then, with `rest`, the rest tile.
    let block = |[b, xbase, goc, p0]: [IntValue<'ctx>; 4], tiles: usize, nv: usize, rest: bool| -> Result<()> {
        let run = nv * LANES as usize;
        let rest_run = rest_nv * LANES as usize;
        // The rest tile's panel rows follow the block's tiles.
        let rest_at = tiles * s.cin_g * run;
        let rest_p0 = e.i64(s.plane - rest_run);
        // `nv` vectors of input from `xp[from..]` to `panel[to..]`.
        let copy = |from: IntValue<'ctx>, to: IntValue<'ctx>, nv: usize| -> Result<()> {
            for j in 0..nv {
                let v = e.vload(xp, e.add(from, e.i64(j * LANES as usize))?)?;
                e.vstore(panel, e.add(to, e.i64(j * LANES as usize))?, v)?;
            }
            Ok(())
        };
        e.lp(s.cin_g, &mut |icg| {
            let chan = e.add(xbase, e.mul(icg, s.plane)?)?;
            let row = e.add(chan, p0)?;
            e.lp(tiles, &mut |t| {
                let to = e.mul(e.add(e.mul(t, s.cin_g)?, icg)?, run)?;
                copy(e.add(row, e.mul(t, run)?)?, to, nv)
            })?;
            if rest {
                copy(e.add(chan, rest_p0)?, e.add(e.mul(icg, rest_run)?, e.i64(rest_at))?, rest_nv)?;
            }
            Ok(())
        })?;
        each_oc(goc, &mut |mr, oc| {
            e.lp(tiles, &mut |t| {
                let pt = e.add(p0, e.mul(t, run)?)?;
                ptile(mr, nv, [b, oc, pt], (panel, e.mul(t, s.cin_g * run)?, run))
            })?;
            if rest {
                ptile(mr, rest_nv, [b, oc, rest_p0], (panel, e.i64(rest_at), rest_run))?;
            }
            Ok(())
        })
    };
    e.lp(s.n * groups, &mut |bgi| {
        let b = e.b.build_int_unsigned_div(bgi, e.i64(groups), "b").map_err(cg)?;
        let g = e.b.build_int_unsigned_rem(bgi, e.i64(groups), "g").map_err(cg)?;
        let xbase = e.mul(e.add(e.mul(b, s.cin)?, e.mul(g, s.cin_g)?)?, s.plane)?;
        let goc = e.mul(g, s.cout_g)?;
        let alone = whole - usize::from(rest_joins);
        if alone > 0 {
            e.lp(alone, &mut |k| block([b, xbase, goc, e.mul(k, per_block * TILE_P)?], per_block, TILE_V, false))?;
        }
        if rest_joins {
            block([b, xbase, goc, e.i64(alone * per_block * TILE_P)], per_block, TILE_V, true)?;
        } else if rest_nv > 0 {
            block([b, xbase, goc, e.i64(s.plane - rest_nv * LANES as usize)], 1, rest_nv, false)?;
        }
        Ok(())
    })
}

/// Largest stack scratch of [`conv_tiled`] (a group's padded input planes and wide output
/// planes) and of [`conv_windowed`]'s wide rows (its padded input plane and every output plane
/// `sw` wide), in bytes.
const WIDE_BYTES: usize = 256 * 1024;
/// Scratch of [`conv_banded`], in f32 (64 KiB on the stack).
const BAND_SCRATCH: usize = 16 * 1024;
/// Most multiply-adds per output [`conv_banded`] takes: beyond, one output's chain of fused
/// multiply-adds is too long to keep the FMA units busy and [`conv_windowed`] is faster.
const BAND_TAPS: usize = 50;

/// Output rows per band of [`conv_banded`] for this convolution, if one row fits.
fn band_rows(c: &nasc_ir::op::Conv2d, in_shape: &[usize], out_shape: &[usize]) -> Option<usize> {
    let groups = c.groups.resolve(in_shape[1]);
    let cin_g = in_shape[1] / groups;
    let sw = (in_shape[3] + 2 * c.padding[1]).div_ceil(c.stride[1]) * c.stride[1];
    let span = c.dilation[0] * (c.kernel[0] - 1) + 1;
    if cin_g * c.kernel[0] * c.kernel[1] > BAND_TAPS {
        return None;
    }
    let rows_in = BAND_SCRATCH / (cin_g * sw);
    (rows_in >= span).then(|| ((rows_in - span) / c.stride[0] + 1).min(out_shape[2]))
}

/// Copies `wd` input columns from `xp[src..]` into a scratch row at `dst` split by column
/// phase (see [`conv_banded`]): input column `x` is padded column `pc = x + pad`, stored at
/// `dst + (pc % sx)·pw + pc / sx`. Stride 1 and 2 move whole vectors (stride 2 splitting each
/// pair of vectors into its even and odd lanes); the rest of a row, and other strides, go one
/// value at a time.
#[allow(clippy::too_many_arguments)]
fn copy_phases<'ctx>(
    e: &Emitter<'_, 'ctx>,
    xp: PointerValue<'ctx>,
    src: IntValue<'ctx>,
    scratch: PointerValue<'ctx>,
    dst: IntValue<'ctx>,
    wd: usize,
    sx: usize,
    pw: usize,
    pad: usize,
) -> Result<()> {
    let l = LANES as usize;
    let slot = |x: usize| (x + pad) % sx * pw + (x + pad) / sx;
    // Input columns per vector step, and how many steps.
    let step = l * sx;
    let steps = if sx <= 2 { wd / step } else { 0 };
    if steps > 0 {
        e.lp(steps, &mut |k| {
            let x0 = e.mul(k, step)?;
            let from = e.add(src, x0)?;
            let to = |x: usize| -> Result<IntValue<'ctx>> {
                // slot(x0 + x) = slot(x) + x0 / sx, since x0 is a multiple of sx.
                e.add(e.add(dst, e.i64(slot(x)))?, e.b.build_int_unsigned_div(x0, e.i64(sx), "s").map_err(cg)?)
            };
            let v0 = e.vload(xp, from)?;
            if sx == 1 {
                return e.vstore(scratch, to(0)?, v0);
            }
            let v1 = e.vload(xp, e.add(from, e.i64(l))?)?;
            let i32t = e.ctx.i32_type();
            for parity in 0..2 {
                let mask: Vec<_> = (0..l).map(|i| i32t.const_int((2 * i + parity) as u64, false)).collect();
                let half = e.b.build_shuffle_vector(v0, v1, VectorType::const_vector(&mask), "half").map_err(cg)?;
                e.vstore(scratch, to(parity)?, half)?;
            }
            Ok(())
        })?;
    }
    for x in steps * step..wd {
        let v = e.load(xp, e.add(src, e.i64(x))?)?;
        e.store(scratch, e.add(dst, e.i64(slot(x)))?, v)?;
    }
    Ok(())
}

/// What a band of outputs computes from its taps: a convolution's weighted sum, or a pooling
/// window's maximum or average (a pool is banded as a depthwise convolution of its window).
#[derive(Clone, Copy)]
enum Reduce<'ctx> {
    /// Bias plus weight × tap over every tap, then the activation (weights at `wg`, biases at
    /// `bg` when `has_bias`).
    Conv { wg: PointerValue<'ctx>, bg: PointerValue<'ctx>, has_bias: bool, act: Option<Activation> },
    /// The largest tap (padding is −∞).
    Max,
    /// The sum of the taps (padding is 0) over the window's size, or, with `rows` and `cols`,
    /// over the taps inside the input: output `(oy, ox)` divides by `rows[oy] · cols[ox]`
    /// (tables of `f32` counts; `cols` reaches a vector past the row's end).
    Mean(Option<(PointerValue<'ctx>, PointerValue<'ctx>)>),
}

impl Reduce<'_> {
    /// The value padding reads as.
    fn fill(&self) -> f32 {
        match self {
            Reduce::Max => f32::NEG_INFINITY,
            _ => 0.0,
        }
    }
}

/// What [`depthwise_band`] computes from an output's taps: a depthwise convolution's (splat
/// weights per tap `ky·kw + kx`, splat bias, activation), or a pool's.
#[derive(Clone, Copy)]
enum Taps<'a, 'ctx> {
    Weighted(&'a [VectorValue<'ctx>], VectorValue<'ctx>, Option<Activation>),
    Pool(Reduce<'ctx>),
}

/// A convolution with few multiply-adds per output (depthwise, or a network's first layer on
/// three input channels), or a pooling window, computed one output row at a time: the rows of
/// a group's input channels that a band of output rows reads are copied into a scratch on the
/// stack bordered by the padding value, then each output is its bias plus every tap of every
/// input channel of the group, activated and stored once (the loop over a row's outputs
/// vectorised, the taps' weights loop-invariant). Depthwise convolutions and pools go to
/// [`depthwise_band`] instead.
#[allow(clippy::too_many_arguments)]
fn conv_banded<'ctx>(
    e: &Emitter<'_, 'ctx>,
    c: &nasc_ir::op::Conv2d,
    in_shape: &[usize],
    out_shape: &[usize],
    band: usize,
    [op, xp]: [PointerValue<'ctx>; 2],
    reduce: Reduce<'ctx>,
) -> Result<()> {
    let (n, cin, h, wd) = (in_shape[0], in_shape[1], in_shape[2], in_shape[3]);
    let (cout, oh, ow) = (out_shape[1], out_shape[2], out_shape[3]);
    let groups = c.groups.resolve(cin);
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let [kh, kw] = c.kernel;
    let [sy, sx] = c.stride;
    let [dy, dx] = c.dilation;
    let sw = wd + 2 * c.padding[1];
    // Each scratch row holds its padded input row split by column phase modulo the stride
    // (`sx` runs of `pw` columns), so every tap reads consecutive columns for consecutive
    // outputs: padded column `pc` is at `(pc % sx)·pw + pc / sx`.
    let pw = sw.div_ceil(sx);
    let rs = sx * pw;
    let rows_in = (band - 1) * sy + dy * (kh - 1) + 1;
    let chan = rows_in * rs;
    // A depthwise row narrower than a vector is computed as one vector whose last lanes read
    // past the row: a vector of zeros after the band keeps those reads inside the scratch.
    let depthwise = cin_g == 1;
    let tail = if depthwise && ow < LANES as usize { LANES as usize } else { 0 };
    let scratch = e.scratch_array(cin_g * chan + tail, "band")?;
    // Borders keep the padding value: only the interior columns are written below.
    let fill = e.f(reduce.fill());
    e.lp(cin_g * chan + tail, &mut |i| e.store(scratch, i, fill))?;
    // The interior of a row: per phase, its first slot and the number of input columns in it.
    let phases: Vec<(usize, usize)> = (0..sx)
        .filter_map(|q| {
            let cols: Vec<usize> = (0..wd).map(|x| x + c.padding[1]).filter(|pc| pc % sx == q).collect();
            Some((q * pw + cols.first()? / sx, cols.len()))
        })
        .collect();
    e.lp(n * groups, &mut |bgi| {
        let b = e.b.build_int_unsigned_div(bgi, e.i64(groups), "b").map_err(cg)?;
        let g = e.b.build_int_unsigned_rem(bgi, e.i64(groups), "g").map_err(cg)?;
        let xbase = e.mul(e.add(e.mul(b, cin)?, e.mul(g, cin_g)?)?, h * wd)?;
        // ⌈oh / band⌉ bands, the last moved back to end at the last row (recomputing a few
        // rows to identical values).
        e.lp(oh.div_ceil(band), &mut |bi| {
            let y = e.mul(bi, band)?;
            let over = e.b.build_int_compare(IntPredicate::UGT, y, e.i64(oh - band), "over").map_err(cg)?;
            let oy0 = e.b.build_select(over, e.i64(oh - band), y, "oy0").map_err(cg)?.into_int_value();
            // Scratch row r holds padded row oy0·sy + r: input row oy0·sy + r − pad, or zeros.
            e.lp(cin_g, &mut |icg| {
                e.lp(rows_in, &mut |r| {
                    let iy = e.b.build_int_sub(e.add(e.mul(oy0, sy)?, r)?, e.i64(c.padding[0]), "iy").map_err(cg)?;
                    let inside = e.b.build_int_compare(IntPredicate::ULT, iy, e.i64(h), "in").map_err(cg)?;
                    let row = e.add(e.mul(icg, chan)?, e.mul(r, rs)?)?;
                    e.if_else(
                        inside,
                        &mut || {
                            let src = e.add(xbase, e.add(e.mul(icg, h * wd)?, e.mul(iy, wd)?)?)?;
                            copy_phases(e, xp, src, scratch, row, wd, sx, pw, c.padding[1])
                        },
                        &mut || {
                            for &(j0, count) in &phases {
                                let dst = e.add(row, e.i64(j0))?;
                                e.lp(count, &mut |j| e.store(scratch, e.add(dst, j)?, fill))?;
                            }
                            Ok(())
                        },
                    )
                })
            })?;
            let tap = |kx: usize| (kx * dx) % sx * pw + (kx * dx) / sx;
            let (wg, bg, has_bias, act) = match reduce {
                Reduce::Conv { wg, bg, has_bias, act } => (wg, bg, has_bias, act),
                pool => {
                    let obase = e.mul(e.add(e.mul(b, cout)?, g)?, oh * ow)?;
                    let geometry = [kh, kw, sy, dy];
                    let at = (op, obase, oy0);
                    return depthwise_band(e, at, (scratch, rs), Taps::Pool(pool), geometry, tap, [band, ow]);
                }
            };
            // `ocb` output channels at a time share each loaded input value (a dense first
            // layer; depthwise has one output channel per group).
            let ocb = [4, 2, 1].into_iter().find(|d| cout_g % d == 0 && (cin_g > 1 || *d == 1)).unwrap_or(1);
            let taps = cin_g * kh * kw;
            e.lp(cout_g / ocb, &mut |ob| {
                let oc0 = e.add(e.mul(g, cout_g)?, e.mul(ob, ocb)?)?;
                let mut ws = Vec::with_capacity(ocb);
                let mut bias = Vec::with_capacity(ocb);
                for o in 0..ocb {
                    let wbase = e.mul(e.add(oc0, e.i64(o))?, taps)?;
                    ws.push((0..taps).map(|t| e.load(wg, e.add(wbase, e.i64(t))?)).collect::<Result<Vec<_>>>()?);
                    bias.push(if has_bias { e.load(bg, e.add(oc0, e.i64(o))?)? } else { e.f(0.0) });
                }
                let obase = e.mul(e.add(e.mul(b, cout)?, oc0)?, oh * ow)?;
                if depthwise {
                    let ws: Vec<VectorValue<'ctx>> = ws[0].iter().map(|&w| e.splat(w)).collect::<Result<_>>()?;
                    let taps = Taps::Weighted(&ws, e.splat(bias[0])?, act);
                    return depthwise_band(e, (op, obase, oy0), (scratch, rs), taps, [kh, kw, sy, dy], tap, [band, ow]);
                }
                e.lp(band, &mut |rr| {
                    let orow = e.add(obase, e.mul(e.add(oy0, rr)?, ow)?)?;
                    let srow = e.mul(rr, sy * rs)?;
                    e.lp(ow, &mut |ox| {
                        let at = e.add(srow, ox)?;
                        // One chain of multiply-adds per output channel and kernel row, summed
                        // at the end: a single chain of all taps would wait on the FMA latency
                        // at every step.
                        let mut partial: Vec<Vec<FloatValue<'ctx>>> = vec![Vec::with_capacity(kh); ocb];
                        for ky in 0..kh {
                            let mut acc: Vec<FloatValue<'ctx>> =
                                (0..ocb).map(|o| if ky == 0 { bias[o] } else { e.f(0.0) }).collect();
                            for icg in 0..cin_g {
                                for kx in 0..kw {
                                    let (q, s) = ((kx * dx) % sx, (kx * dx) / sx);
                                    let t = icg * chan + ky * dy * rs + q * pw + s;
                                    let x = e.load(scratch, e.add(at, e.i64(t))?)?;
                                    for o in 0..ocb {
                                        acc[o] = e.fmuladd(ws[o][(icg * kh + ky) * kw + kx], x, acc[o])?;
                                    }
                                }
                            }
                            for o in 0..ocb {
                                partial[o].push(acc[o]);
                            }
                        }
                        for (o, chains) in partial.iter().enumerate() {
                            let mut acc = chains[0];
                            for &p in &chains[1..] {
                                acc = e.fadd(acc, p)?;
                            }
                            if let Some(a) = act {
                                acc = e.act(a, acc)?;
                            }
                            e.store(op, e.add(e.add(orow, ox)?, e.i64(o * oh * ow))?, acc)?;
                        }
                        Ok(())
                    })
                })
            })
        })
    })
}

/// One channel's band of a depthwise convolution or a pool (`taps`), `band` ≥ 1 rows of `ow`
/// outputs from row `oy0` of the output plane at `op[obase..]`, read from the banded scratch
/// (see [`conv_banded`]): scratch row `rr·sy + ky·dy` and offset `tap(kx)` from an output's
/// column hold tap `(ky, kx)` of output row `rr`. Outputs go in register blocks of a few rows by a
/// few vectors (the last block of each direction moved back to end at the band's or row's end,
/// recomputing a few outputs to identical values; a row narrower than a vector is one vector
/// whose lanes past the row are computed from whatever follows it in the scratch and not
/// stored). Each loaded vector of a scratch row feeds
/// every output row of the block it is a tap of, so a multiply-add costs well under one load
/// — loading every tap afresh, with its weight spilled from the registers that 25 taps'
/// splats do not fit in, leaves the loop waiting on loads.
#[allow(clippy::too_many_arguments)]
fn depthwise_band<'ctx>(
    e: &Emitter<'_, 'ctx>,
    (op, obase, oy0): (PointerValue<'ctx>, IntValue<'ctx>, IntValue<'ctx>),
    (scratch, rs): (PointerValue<'ctx>, usize),
    taps: Taps<'_, 'ctx>,
    [kh, kw, sy, dy]: [usize; 4],
    tap: impl Fn(usize) -> usize,
    [band, ow]: [usize; 2],
) -> Result<()> {
    let l = LANES as usize;
    let start = match taps {
        Taps::Weighted(_, bias, _) => bias,
        Taps::Pool(p) => e.splat(e.f(p.fill()))?,
    };
    // Rows by vectors per block, measured on this machine's AVX2 (8 accumulators): a row of
    // up to four vectors in one block, two rows at a time — for a window of 5×5 or more, as
    // many rows as make eight accumulators, so that the long chains of multiply-adds of a
    // narrow row (one vector on the planes of 8×8 and less that end a network) do not wait on
    // each other's latency (a 7×7 window on 192 channels of 7×7: 1.6× faster, 5×5 1.3×);
    // longer rows at stride 1 in four rows by two vectors, as each scratch row serves up to
    // `kh` output rows; stride 2 shares scratch rows less, so it takes wider blocks instead.
    let vecs = ow.div_ceil(l);
    let (rows, cols) = match (sy, vecs) {
        (_, 1..=4) if kh * kw >= 25 => ((8 / vecs).max(2), vecs),
        (_, 1..=4) => (2, vecs),
        (1, _) => (4, 2),
        _ => (2, 4),
    };
    let rows = rows.min(band);
    // The (output row, kernel row) pairs reading each scratch row of a block.
    let mut readers: std::collections::BTreeMap<usize, Vec<(usize, usize)>> = Default::default();
    for r in 0..rows {
        for ky in 0..kh {
            readers.entry(r * sy + ky * dy).or_default().push((r, ky));
        }
    }
    // `p`, or `max` past it: a block moved back to end at the end of its run.
    let upto = |p: IntValue<'ctx>, max: usize| -> Result<IntValue<'ctx>> {
        let past = e.b.build_int_compare(IntPredicate::UGT, p, e.i64(max), "past").map_err(cg)?;
        Ok(e.b.build_select(past, e.i64(max), p, "upto").map_err(cg)?.into_int_value())
    };
    e.lp(band.div_ceil(rows), &mut |rk| {
        let rr = upto(e.mul(rk, rows)?, band - rows)?;
        let srow = e.mul(rr, sy * rs)?;
        let orow = e.mul(e.add(oy0, rr)?, ow)?;
        e.lp(vecs.div_ceil(cols), &mut |ck| {
            let first = e.mul(ck, cols * l)?;
            let at: Vec<IntValue<'ctx>> =
                (0..cols).map(|j| upto(e.add(first, e.i64(j * l))?, ow.saturating_sub(l))).collect::<Result<_>>()?;
            let mut acc = vec![vec![start; cols]; rows];
            for (&ri, pairs) in &readers {
                for kx in 0..kw {
                    let off = e.add(srow, e.i64(ri * rs + tap(kx)))?;
                    for (j, &p) in at.iter().enumerate() {
                        let x = e.vload(scratch, e.add(off, p)?)?;
                        for &(r, ky) in pairs {
                            let a = acc[r][j];
                            acc[r][j] = match taps {
                                Taps::Weighted(ws, ..) => e.vintrinsic("llvm.fmuladd", &[ws[ky * kw + kx], x, a])?,
                                Taps::Pool(Reduce::Max) => e.vintrinsic("llvm.maxnum", &[a, x])?,
                                Taps::Pool(_) => e.b.build_float_add(a, x, "s").map_err(cg)?,
                            };
                        }
                    }
                }
            }
            for (r, vs) in acc.into_iter().enumerate() {
                // An average excluding padding: this row's count of taps inside the input.
                let row_taps = match taps {
                    Taps::Pool(Reduce::Mean(Some((rows_in, _)))) => {
                        Some(e.splat(e.load(rows_in, e.add(e.add(oy0, rr)?, e.i64(r))?)?)?)
                    }
                    _ => None,
                };
                for (j, mut v) in vs.into_iter().enumerate() {
                    match taps {
                        Taps::Weighted(_, _, Some(a)) => v = e.vact(a, v)?,
                        Taps::Pool(Reduce::Mean(None)) => {
                            v = e.b.build_float_div(v, e.splat(e.f((kh * kw) as f32))?, "mean").map_err(cg)?
                        }
                        Taps::Pool(Reduce::Mean(Some((_, cols_in)))) => {
                            let rows = row_taps.expect("set for this reduction");
                            let count = e.b.build_float_mul(rows, e.vload(cols_in, at[j])?, "n").map_err(cg)?;
                            v = e.b.build_float_div(v, count, "mean").map_err(cg)?;
                        }
                        _ => {}
                    }
                    let to = e.add(e.add(obase, e.add(orow, e.i64(r * ow))?)?, at[j])?;
                    if ow >= l {
                        e.vstore(op, to, v)?;
                    } else {
                        for lane in 0..ow {
                            let x =
                                e.b.build_extract_element(v, e.ctx.i32_type().const_int(lane as u64, false), "lane");
                            e.store(op, e.add(to, e.i64(lane))?, x.map_err(cg)?.into_float_value())?;
                        }
                    }
                }
            }
            Ok(())
        })
    })
}

/// Any convolution other than the tiled 1×1: each input channel is copied once into a
/// zero-bordered scratch plane on the stack, then every output channel of its group adds its
/// `kh × kw` taps (weights held in registers, the tap loop unrolled) over every output
/// position — no bounds tests, one load and store of each output per input channel, and an
/// inner loop over output columns the vectoriser handles (strided for stride 2). At stride 1 on
/// rows narrower than a tile of positions, the outputs are accumulated as wide as the scratch's
/// rows, so the loop runs over whole planes (3× faster on 96 channels at 14×14).
#[allow(clippy::too_many_arguments)]
fn conv_windowed<'ctx>(
    e: &Emitter<'_, 'ctx>,
    c: &nasc_ir::op::Conv2d,
    in_shape: &[usize],
    out_shape: &[usize],
    [op, xp, wg, bg]: [PointerValue<'ctx>; 4],
    has_bias: bool,
    act: Option<Activation>,
) -> Result<()> {
    let (n, cin, h, wd) = (in_shape[0], in_shape[1], in_shape[2], in_shape[3]);
    let (cout, oh, ow) = (out_shape[1], out_shape[2], out_shape[3]);
    let groups = c.groups.resolve(cin);
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let [kh, kw] = c.kernel;
    let [pad_h, pad_w] = c.padding;
    let (sh, sw) = (h + 2 * pad_h, wd + 2 * pad_w);
    let plane = oh * ow;
    // Narrow rows at stride 1: outputs are accumulated `sw` wide (the scratch's row pitch) in a
    // scratch, as one row of `oh · sw` per output channel, so the loop over a row reads the
    // padded input contiguously and vectorises where a row of under two vectors would not (the
    // columns past `ow` are computed and dropped); the valid columns are activated into the
    // output at the end. Otherwise the outputs accumulate in place, `oh` rows of `ow`.
    let pad_len = sh * sw + c.dilation[1] * (kw - 1);
    let wide = c.stride == [1, 1] && ow < TILE_P && (pad_len + cout * oh * sw) * 4 <= WIDE_BYTES;
    let (scratch, pad_len, acc_to, rows, cols) = if wide {
        // Two arrays, so the vectoriser sees the reads and the accumulators cannot overlap.
        let [scratch, acc_to] = e.scratch_arrays([(pad_len, "pad"), (cout * oh * sw, "wide")])?;
        (scratch, pad_len, acc_to, 1, oh * sw)
    } else {
        (e.scratch_array(sh * sw, "pad")?, sh * sw, op, oh, ow)
    };
    // Borders stay zero: only the interior is written below.
    e.lp(pad_len, &mut |i| e.store(scratch, i, e.f(0.0)))?;
    e.lp(n, &mut |b| {
        // Batch `b`'s accumulators: its outputs, or the wide scratch.
        let abase = if wide { e.i64(0) } else { e.mul(b, cout * plane)? };
        e.lp(cout, &mut |oc| {
            let init = if has_bias { e.load(bg, oc)? } else { e.f(0.0) };
            let base = e.add(abase, e.mul(oc, rows * cols)?)?;
            e.lp(rows * cols, &mut |p| e.store(acc_to, e.add(base, p)?, init))
        })?;
        e.lp(groups, &mut |g| {
            e.lp(cin_g, &mut |icg| {
                let ic = e.add(e.mul(g, cin_g)?, icg)?;
                let xbase = e.mul(e.add(e.mul(b, cin)?, ic)?, h * wd)?;
                e.copy_plane((xp, xbase), (scratch, e.i64(pad_h * sw + pad_w)), [h, wd], sw)?;
                e.lp(cout_g, &mut |ocg| {
                    let oc = e.add(e.mul(g, cout_g)?, ocg)?;
                    let wbase = e.mul(e.add(e.mul(oc, cin_g)?, icg)?, kh * kw)?;
                    let ws: Vec<FloatValue<'ctx>> =
                        (0..kh * kw).map(|t| e.load(wg, e.add(wbase, e.i64(t))?)).collect::<Result<_>>()?;
                    let obase = e.add(abase, e.mul(oc, rows * cols)?)?;
                    e.lp(rows, &mut |oy| {
                        let row = e.mul(oy, c.stride[0] * sw)?;
                        let orow = e.add(obase, e.mul(oy, cols)?)?;
                        e.lp(cols, &mut |ox| {
                            let o = e.add(orow, ox)?;
                            let at = e.add(row, e.mul(ox, c.stride[1])?)?;
                            let mut acc = e.load(acc_to, o)?;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let tap = ky * c.dilation[0] * sw + kx * c.dilation[1];
                                    acc = e.fmuladd(ws[ky * kw + kx], e.load(scratch, e.add(at, e.i64(tap))?)?, acc)?;
                                }
                            }
                            e.store(acc_to, o, acc)
                        })
                    })
                })
            })
        })?;
        let out = e.mul(b, cout * plane)?;
        if wide {
            e.lp(cout * oh, &mut |r| {
                let (from, to) = (e.mul(r, sw)?, e.add(out, e.mul(r, ow)?)?);
                e.lp(ow, &mut |x| {
                    let mut v = e.load(acc_to, e.add(from, x)?)?;
                    if let Some(act) = act {
                        v = e.act(act, v)?;
                    }
                    e.store(op, e.add(to, x)?, v)
                })
            })
        } else if let Some(act) = act {
            e.lp(cout * plane, &mut |i| {
                let at = e.add(out, i)?;
                let v = e.act(act, e.load(op, at)?)?;
                e.store(op, at, v)
            })
        } else {
            Ok(())
        }
    })
}

/// Shapes of a k×k convolution run by [`conv_tiled`], a band of `rows` output rows at a
/// time. The padded input rows a band reads are split into `sy × sx` *phase planes* (phase
/// `(py, px)` holds the padded rows `py, py + sy, …` and columns `px, px + sx, …`; at stride
/// 1 the one phase is the padded input itself), so a tap of a run of consecutive outputs reads
/// a run of consecutive values of one phase plane. Outputs are computed `pw` wide (a phase
/// plane's row pitch), `wpos` positions per band and output channel (`rows · pw` rounded up
/// to whole vectors); the columns past `ow` are dropped.
#[derive(Clone, Copy, Debug)]
struct Direct {
    /// Phase-plane row pitch: the padded width over the column stride, rounded up.
    pw: usize,
    /// Phase-plane rows a band reads: its output rows and the rows its taps reach below.
    ph: usize,
    /// Output rows per band (all of them when one band fits).
    rows: usize,
    /// Stride `[sy, sx]`.
    stride: [usize; 2],
    /// Positions computed per band and output channel.
    wpos: usize,
    /// f32 per input channel in the scratch: its phase planes, and room for the last
    /// vector's farthest tap.
    pitch: usize,
    /// Taps per input channel (`kh · kw`).
    taps: usize,
}

impl Direct {
    /// The tiling of `c` from `x` to `y` (NCHW) in the fewest bands whose phase planes and
    /// wide outputs, for one group, fit in [`WIDE_BYTES`], rows spread evenly over them;
    /// `None` when not even two rows (or one row of a single-row output) fit.
    fn new(c: &nasc_ir::op::Conv2d, x: &[usize], y: &[usize]) -> Option<Direct> {
        let groups = c.groups.resolve(x[1]);
        let (cin_g, cout_g, oh) = (x[1] / groups, y[1] / groups, y[2]);
        let stride = c.stride;
        let pw = (x[3] + 2 * c.padding[1]).div_ceil(stride[1]);
        let reach = c.dilation[0] * (c.kernel[0] - 1) / stride[0];
        let taps = c.kernel[0] * c.kernel[1];
        let fit = |rows: usize| {
            let mut d = Direct { pw, ph: rows + reach, rows, stride, wpos: 0, pitch: 0, taps };
            let far = d.offsets(c).into_iter().max().unwrap_or(0);
            d.wpos = (rows * pw).div_ceil(LANES as usize) * LANES as usize;
            d.pitch = (stride[0] * stride[1] * d.ph * pw).max(d.wpos + far);
            ((cin_g * d.pitch + cout_g * d.wpos) * 4 <= WIDE_BYTES).then_some(d)
        };
        // The most rows that fit, then as many rows in each band as that many bands need.
        let most = (oh.min(2)..=oh).rev().find_map(fit)?.rows;
        fit(oh.div_ceil(oh.div_ceil(most)))
    }

    /// Where each tap `(ky, kx)` reads, relative to its output position, in an input
    /// channel's scratch: padded row `oy·sy + ky·dy` is row `oy + ky·dy / sy` of the phase
    /// rows `ky·dy mod sy` (columns alike).
    fn offsets(&self, c: &nasc_ir::op::Conv2d) -> Vec<usize> {
        let [sy, sx] = self.stride;
        let phase = self.ph * self.pw;
        let (dy, dx) = (c.dilation[0], c.dilation[1]);
        (0..c.kernel[0])
            .flat_map(|ky| (0..c.kernel[1]).map(move |kx| (ky * dy, kx * dx)))
            .map(|(ry, rx)| (ry % sy * sx + rx % sx) * phase + ry / sy * self.pw + rx / sx)
            .collect()
    }

    /// The `[cout][cin_g][kh][kw]` weights packed like [`Pointwise::pack`]'s, each output
    /// channel's `cin_g · kh · kw` taps as its inputs.
    fn pack(&self, w: &[f32], cin: usize, cout: usize, groups: usize) -> Vec<f32> {
        let k = cin / groups * self.taps;
        Pointwise { n: 1, cin: k * groups, cout, cin_g: k, cout_g: cout / groups, plane: 0 }.pack(w)
    }
}

/// A k×k convolution as a register-tiled product over weights packed by [`Direct::pack`],
/// one band of output rows at a time: the input rows of a group that a band reads are copied
/// into zero-bordered scratch phase planes (rows above or below the input as zeros), and for
/// each tile of up to [`TILE_OC`] output channels and [`TILE_P`] positions (counted `pw`
/// wide), `TILE_OC × TILE_V` vector accumulators stay in registers while every input channel
/// adds its taps — each tap a contiguous run of a phase plane, so each step is `TILE_V`
/// vector loads, `TILE_OC` broadcasts and `TILE_OC × TILE_V` fused multiply-adds. The wide
/// outputs land in a scratch whose valid columns are copied out. The last band ends at the
/// last output row (overlapping the one before it when the rows do not divide evenly).
#[allow(clippy::too_many_arguments)]
fn conv_tiled<'ctx>(
    e: &Emitter<'_, 'ctx>,
    c: &nasc_ir::op::Conv2d,
    d: Direct,
    in_shape: &[usize],
    out_shape: &[usize],
    [op, xp, wg, bg]: [PointerValue<'ctx>; 4],
    has_bias: bool,
    act: Option<Activation>,
) -> Result<()> {
    let (n, cin, h, wd) = (in_shape[0], in_shape[1], in_shape[2], in_shape[3]);
    let (cout, oh, ow) = (out_shape[1], out_shape[2], out_shape[3]);
    let groups = c.groups.resolve(cin);
    let (cin_g, cout_g) = (cin / groups, cout / groups);
    let [pad_h, pad_w] = c.padding;
    let k_dim = cin_g * d.taps;
    let offsets = d.offsets(c);
    let [sy, sx] = d.stride;
    let phase = d.ph * d.pw;
    let bands = oh.div_ceil(d.rows);
    let l = LANES as usize;
    let pad = e.scratch_array(cin_g * d.pitch + cout_g * d.wpos, "direct")?;
    let wide = e.ptr_at(pad, e.i64(cin_g * d.pitch))?;
    // Column borders stay zero: only the input's columns are written below.
    e.lp(cin_g * d.pitch, &mut |i| e.store(pad, i, e.f(0.0)))?;
    let acc = Accumulators::new(e)?;
    // One register tile: `mr` output channels from `ocg` (in the group; `oc` absolute) times
    // `nv` vectors of positions from `q0`.
    let tile = |mr: usize, nv: usize, ocg: IntValue<'ctx>, oc: IntValue<'ctx>, q0: IntValue<'ctx>| -> Result<()> {
        acc.start(e, mr, nv, has_bias.then_some((bg, oc)))?;
        let wbase = e.mul(oc, k_dim)?;
        e.lp(cin_g, &mut |icg| {
            let xrow = e.add(e.mul(icg, d.pitch)?, q0)?;
            let wrow = e.add(wbase, e.mul(icg, d.taps * mr)?)?;
            for (t, &off) in offsets.iter().enumerate() {
                let xs: Vec<VectorValue<'ctx>> =
                    (0..nv).map(|j| e.vload(pad, e.add(xrow, e.i64(off + j * l))?)).collect::<Result<_>>()?;
                acc.step(e, mr, &xs, &|k| e.load(wg, e.add(wrow, e.i64(t * mr + k))?))?;
            }
            Ok(())
        })?;
        acc.finish(e, mr, nv, act, &mut |k, j, a| {
            e.vstore(wide, e.add(e.add(e.mul(e.add(ocg, e.i64(k))?, d.wpos)?, q0)?, e.i64(j * l))?, a)
        })
    };
    e.lp(n * groups * bands, &mut |it| {
        let bgi = e.b.build_int_unsigned_div(it, e.i64(bands), "bg").map_err(cg)?;
        let band = e.b.build_int_unsigned_rem(it, e.i64(bands), "band").map_err(cg)?;
        let b = e.b.build_int_unsigned_div(bgi, e.i64(groups), "b").map_err(cg)?;
        let g = e.b.build_int_unsigned_rem(bgi, e.i64(groups), "g").map_err(cg)?;
        // The band's first output row: `band · rows`, or `oh − rows` for the last band.
        let last = e.b.build_int_compare(IntPredicate::EQ, band, e.i64(bands - 1), "last").map_err(cg)?;
        let oy0 = e.b.build_select(last, e.i64(oh - d.rows), e.mul(band, d.rows)?, "oy0").map_err(cg)?.into_int_value();
        let xbase = e.mul(e.add(e.mul(b, cin)?, e.mul(g, cin_g)?)?, h * wd)?;
        e.lp(cin_g, &mut |icg| {
            let plane = e.add(xbase, e.mul(icg, h * wd)?)?;
            // Phase row `j` of the phase rows `py` is padded row `r = (oy0 + j)·sy + py`,
            // input row `r − pad_h` when there is one, its columns split by phase.
            e.lp(d.ph * sy, &mut |jp| {
                let j = e.b.build_int_unsigned_div(jp, e.i64(sy), "j").map_err(cg)?;
                let py = e.b.build_int_unsigned_rem(jp, e.i64(sy), "py").map_err(cg)?;
                let r = e.add(e.mul(oy0, sy)?, jp)?;
                let to = e.add(e.add(e.mul(icg, d.pitch)?, e.mul(py, sx * phase)?)?, e.mul(j, d.pw)?)?;
                let above = e.b.build_int_compare(IntPredicate::ULT, r, e.i64(pad_h), "above").map_err(cg)?;
                let below = e.b.build_int_compare(IntPredicate::UGE, r, e.i64(pad_h + h), "below").map_err(cg)?;
                let outside = e.b.build_or(above, below, "outside").map_err(cg)?;
                e.if_else(
                    outside,
                    &mut || {
                        (0..sx).try_for_each(|px| {
                            let row = e.add(to, e.i64(px * phase))?;
                            e.lp(d.pw, &mut |x| e.store(pad, e.add(row, x)?, e.f(0.0)))
                        })
                    },
                    &mut || {
                        let src = e.add(plane, e.mul(e.b.build_int_sub(r, e.i64(pad_h), "y").map_err(cg)?, wd)?)?;
                        copy_phases(e, xp, src, pad, to, wd, sx, phase, pad_w)
                    },
                )
            })
        })?;
        let goc = e.mul(g, cout_g)?;
        // Output-channel tiles of TILE_OC, then the rest; position tiles of TILE_V vectors,
        // then one of a single vector.
        let full = cout_g / TILE_OC;
        let each_p = |mr: usize, ocg: IntValue<'ctx>| -> Result<()> {
            let oc = e.add(goc, ocg)?;
            if d.wpos >= TILE_P {
                e.lp(d.wpos / TILE_P, &mut |pb| tile(mr, TILE_V, ocg, oc, e.mul(pb, TILE_P)?))?;
            }
            if d.wpos % TILE_P > 0 {
                tile(mr, 1, ocg, oc, e.i64(d.wpos - l))?;
            }
            Ok(())
        };
        if full > 0 {
            e.lp(full, &mut |t| each_p(TILE_OC, e.mul(t, TILE_OC)?))?;
        }
        if cout_g % TILE_OC > 0 {
            each_p(cout_g % TILE_OC, e.i64(full * TILE_OC))?;
        }
        // The valid columns of the band's wide outputs.
        let obase = e.add(e.mul(e.add(e.mul(b, cout)?, goc)?, oh * ow)?, e.mul(oy0, ow)?)?;
        e.lp(cout_g * d.rows, &mut |rr| {
            let ocg = e.b.build_int_unsigned_div(rr, e.i64(d.rows), "ocg").map_err(cg)?;
            let oy = e.b.build_int_unsigned_rem(rr, e.i64(d.rows), "oy").map_err(cg)?;
            let from = e.add(e.mul(ocg, d.wpos)?, e.mul(oy, d.pw)?)?;
            let to = e.add(obase, e.add(e.mul(ocg, oh * ow)?, e.mul(oy, ow)?)?)?;
            e.lp(ow, &mut |x| e.store(op, e.add(to, x)?, e.load(wide, e.add(from, x)?)?))
        })
    })
}

/// A batch norm as a per-channel affine map `y = x·scale + shift`.
fn bn_scale_shift(w: &Weights, node: &nasc_ir::Node) -> Result<(Vec<f32>, Vec<f32>)> {
    let Op::BatchNorm(bn) = &node.op else { return Err(CodegenError(format!("`{}` is not a batch norm", node.name))) };
    let t = |n: &str| w.get(&node.name, n).map(|t| t.data.clone()).map_err(cg);
    let (gm, bt, mn, vr) = (t("gamma")?, t("beta")?, t("mean")?, t("var")?);
    let scale: Vec<f32> = (0..gm.len()).map(|k| gm[k] / (vr[k] + bn.epsilon).sqrt()).collect();
    let shift: Vec<f32> = (0..gm.len()).map(|k| bt[k] - mn[k] * scale[k]).collect();
    Ok((scale, shift))
}

/// Over `classes` scores at arena offset `base`: the maximum `m`, `Σ exp(x − m)` and
/// `Σ exp(x − m)·(x − m)`, as loops (ImageNet heads have 1,000 classes).
fn softmax_sums<'ctx>(
    e: &Emitter<'_, 'ctx>,
    xa: PointerValue<'ctx>,
    base: IntValue<'ctx>,
    classes: usize,
) -> Result<(FloatValue<'ctx>, FloatValue<'ctx>, FloatValue<'ctx>)> {
    let (mp, sp, wp) = (e.slot()?, e.slot()?, e.slot()?);
    let get = |p: PointerValue<'ctx>| -> Result<FloatValue<'ctx>> {
        Ok(e.b.build_load(e.f32t, p, "v").map_err(cg)?.into_float_value())
    };
    let put = |p: PointerValue<'ctx>, v: FloatValue<'ctx>| -> Result<()> {
        e.b.build_store(p, v).map_err(cg)?;
        Ok(())
    };
    put(mp, e.f(f32::NEG_INFINITY))?;
    e.lp(classes, &mut |c| put(mp, e.fmax(get(mp)?, e.load(xa, e.add(base, c)?)?)?))?;
    let m = get(mp)?;
    put(sp, e.f(0.0))?;
    put(wp, e.f(0.0))?;
    e.lp(classes, &mut |c| {
        let d = e.b.build_float_sub(e.load(xa, e.add(base, c)?)?, m, "d").map_err(cg)?;
        let ex = e.intrinsic("llvm.exp.f32", &[d])?;
        put(sp, e.fadd(get(sp)?, ex)?)?;
        put(wp, e.fadd(get(wp)?, e.fmul(ex, d)?)?)
    })?;
    Ok((m, get(sp)?, get(wp)?))
}

/// The body of one node's kernel.
fn kernel<'ctx>(
    e: &Emitter<'_, 'ctx>,
    g: &Graph,
    w: &Weights,
    shapes: &[Shape],
    plan: &ArenaPlan,
    fusion: &Fusion,
    id: NodeId,
) -> Result<()> {
    let node = g.node(id);
    let ins = g.inputs(id);
    let off = |n: NodeId| plan.offsets[n.index()].expect("planned");
    let out_shape = &shapes[id.index()];
    let a = e.arena;
    // Where this kernel writes: the caller's output buffer when its value is the network's
    // output (`Emitter::output`), else its arena slot; and where it reads a value: the
    // network's input where the caller has it, else the value's arena slot.
    let (oa, out_off) = match e.output {
        Some(out) => (out, 0),
        None => (a, off(id)),
    };
    let at = |n: NodeId| -> (PointerValue<'ctx>, usize) {
        match (&g.node(n).op, e.input) {
            (Op::Input(_), Some(input)) => (input, 0),
            _ => (a, off(n)),
        }
    };
    let ptr = |(base, o): (PointerValue<'ctx>, usize)| e.ptr_at(base, e.i64(o));
    let wt = |t: &str| -> Result<Tensor> { w.get(&node.name, t).cloned().map_err(cg) };
    let copy = |(xa, src): (PointerValue<'ctx>, usize), n: usize| -> Result<()> {
        e.lp(n, &mut |i| {
            let v = e.load(xa, e.add(i, e.i64(src))?)?;
            e.store(oa, e.add(i, e.i64(out_off))?, v)
        })
    };
    match &node.op {
        Op::Input(_) => {}
        Op::Identity | Op::Flatten => copy(at(ins[0]), numel(out_shape))?,
        Op::Output | Op::Exit(_) => unreachable!("sinks are fused into their inputs' kernels"),
        Op::Relu | Op::Relu6 | Op::Hswish | Op::Hsigmoid | Op::Sigmoid | Op::Swish => {
            let act = node.op.as_activation().expect("activation");
            let (xa, src) = at(ins[0]);
            e.lp(numel(out_shape), &mut |i| {
                let v = e.act(act, e.load(xa, e.add(i, e.i64(src))?)?)?;
                e.store(oa, e.add(i, e.i64(out_off))?, v)
            })?;
        }
        Op::Zero => e.lp(numel(out_shape), &mut |i| e.store(oa, e.add(i, e.i64(out_off))?, e.f(0.0)))?,
        Op::Add => {
            let srcs: Vec<(PointerValue<'ctx>, usize)> = ins.iter().map(|&i| at(i)).collect();
            e.lp(numel(out_shape), &mut |i| {
                let mut s = e.load(srcs[0].0, e.add(i, e.i64(srcs[0].1))?)?;
                for &(xa, o) in &srcs[1..] {
                    s = e.fadd(s, e.load(xa, e.add(i, e.i64(o))?)?)?;
                }
                e.store(oa, e.add(i, e.i64(out_off))?, s)
            })?;
        }
        Op::Mul => {
            let ((xa, x), (ya, y)) = (at(ins[0]), at(ins[1]));
            let per_channel = shapes[ins[1].index()] != *out_shape;
            let inner = if per_channel { out_shape[2] * out_shape[3] } else { 1 };
            e.lp(numel(out_shape), &mut |i| {
                let yi = if per_channel { e.b.build_int_unsigned_div(i, e.i64(inner), "c").map_err(cg)? } else { i };
                let v = e.fmul(e.load(xa, e.add(i, e.i64(x))?)?, e.load(ya, e.add(yi, e.i64(y))?)?)?;
                e.store(oa, e.add(i, e.i64(out_off))?, v)
            })?;
        }
        Op::BatchNorm(_) => {
            let c = out_shape[1];
            let inner: usize = out_shape[2..].iter().product();
            let (scale, shift) = bn_scale_shift(w, node)?;
            let sg = e.global(&format!("{}.scale", node.name), &scale);
            let hg = e.global(&format!("{}.shift", node.name), &shift);
            let (xa, src) = at(ins[0]);
            let n = out_shape[0];
            e.lp(n * c, &mut |nc| {
                let ch = e.b.build_int_unsigned_rem(nc, e.i64(c), "ch").map_err(cg)?;
                let (s, h) = (e.load(sg, ch)?, e.load(hg, ch)?);
                let base = e.mul(nc, inner)?;
                e.lp(inner, &mut |i| {
                    let idx = e.add(base, i)?;
                    let v = e.load(xa, e.add(idx, e.i64(src))?)?;
                    let y = e.fadd(e.fmul(v, s)?, h)?;
                    e.store(oa, e.add(idx, e.i64(out_off))?, y)
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
            let mut weight = wt("weight")?.data;
            let mut bias_v = if c.bias { Some(wt("bias")?.data) } else { None };
            if let Some(&bn_id) = fusion.bn.get(&id.index()) {
                // y = (conv(x) + b − mean)·γ/√(var+ε) + β: scale each output channel's weights
                // and bias.
                let (scale, shift) = bn_scale_shift(w, g.node(bn_id))?;
                let per = weight.len() / cout;
                for (k, chunk) in weight.chunks_mut(per).enumerate() {
                    chunk.iter_mut().for_each(|v| *v *= scale[k]);
                }
                let b0 = bias_v.unwrap_or_else(|| vec![0.0; cout]);
                bias_v = Some(b0.iter().enumerate().map(|(k, &b)| b * scale[k] + shift[k]).collect());
            }
            let act_v = c.act.or(fusion.act.get(&id.index()).copied());
            let plane = oh * ow;
            let pointwise = is_pointwise(c, s, out_shape);
            let tiled = (pointwise && plane >= TILE_P).then_some(Pointwise { n, cin, cout, cin_g, cout_g, plane });
            if let Some(shape) = tiled {
                weight = shape.pack(&weight);
            }
            let direct =
                (!pointwise && band_rows(c, s, out_shape).is_none()).then(|| Direct::new(c, s, out_shape)).flatten();
            if let Some(d) = direct {
                weight = d.pack(&weight, cin, cout, groups);
            }
            let wg = e.global(&format!("{}.weight", node.name), &weight);
            let bias = bias_v.as_ref().map(|b| e.global(&format!("{}.bias", node.name), b));
            let c = c.clone();
            let has_bias = bias.is_some();
            let residual = fusion.residual.get(&id.index()).copied();
            let key = format!("conv {c:?} {s:?} {out_shape:?} {act_v:?} {has_bias} {}", residual.is_some());
            let imp = e.shared_kernel(key, &|e, [op, xp, wg, bg, rp]| {
                if let Some(shape) = tiled {
                    return pointwise_tiled(e, shape, [op, xp, wg, bg, rp], has_bias, act_v, residual.is_some());
                }
                if !pointwise {
                    if let Some(band) = band_rows(&c, s, out_shape) {
                        let conv = Reduce::Conv { wg, bg, has_bias, act: act_v };
                        return conv_banded(e, &c, s, out_shape, band, [op, xp], conv);
                    }
                    if let Some(d) = direct {
                        return conv_tiled(e, &c, d, s, out_shape, [op, xp, wg, bg], has_bias, act_v);
                    }
                    return conv_windowed(e, &c, s, out_shape, [op, xp, wg, bg], has_bias, act_v);
                }
                // 1×1 with output channels per group not a multiple of the tile, or a plane
                // smaller than one tile: one flat loop over the plane per output channel.
                e.lp(n * cout, &mut |noc| {
                    let oc = e.b.build_int_unsigned_rem(noc, e.i64(cout), "oc").map_err(cg)?;
                    let b = e.b.build_int_unsigned_div(noc, e.i64(cout), "b").map_err(cg)?;
                    let grp = e.b.build_int_unsigned_div(oc, e.i64(cout_g), "g").map_err(cg)?;
                    let obase = e.add(e.mul(noc, plane)?, e.i64(0))?;
                    let init = if has_bias { e.load(bg, oc)? } else { e.f(0.0) };
                    e.lp(plane, &mut |p| e.store(op, e.add(obase, p)?, init))?;
                    let xchan = |icg: IntValue<'ctx>| -> Result<IntValue<'ctx>> {
                        let ic = e.add(e.mul(grp, cin_g)?, icg)?;
                        e.add(e.mul(e.add(e.mul(b, cin)?, ic)?, h * wd)?, e.i64(0))
                    };
                    let wrow = e.mul(oc, cin_g * kh * kw)?;
                    // 1×1: one flat loop over the plane, four input channels per pass so each
                    // output value is loaded and stored once per four multiply-adds.
                    let quads = cin_g / 4;
                    if quads > 0 {
                        e.lp(quads, &mut |q| {
                            let icg = e.mul(q, 4)?;
                            let mut xs = Vec::with_capacity(4);
                            let mut ws = Vec::with_capacity(4);
                            for j in 0..4 {
                                let ij = e.add(icg, e.i64(j))?;
                                xs.push(xchan(ij)?);
                                ws.push(e.load(wg, e.add(wrow, ij)?)?);
                            }
                            e.lp(plane, &mut |p| {
                                let o = e.add(obase, p)?;
                                let mut acc = e.load(op, o)?;
                                for j in 0..4 {
                                    acc = e.fmuladd(ws[j], e.load(xp, e.add(xs[j], p)?)?, acc)?;
                                }
                                e.store(op, o, acc)
                            })
                        })?;
                    }
                    for j in quads * 4..cin_g {
                        let x0 = xchan(e.i64(j))?;
                        let w0 = e.load(wg, e.add(wrow, e.i64(j))?)?;
                        e.lp(plane, &mut |p| {
                            let o = e.add(obase, p)?;
                            let v = e.fmuladd(w0, e.load(xp, e.add(x0, p)?)?, e.load(op, o)?)?;
                            e.store(op, o, v)
                        })?;
                    }
                    if let Some(act) = act_v {
                        e.lp(plane, &mut |p| {
                            let o = e.add(obase, p)?;
                            let v = e.act(act, e.load(op, o)?)?;
                            e.store(op, o, v)
                        })?;
                    }
                    Ok(())
                })
            })?;
            let x = ptr(at(ins[0]))?;
            let out = ptr((oa, out_off))?;
            let r = match residual {
                Some(r) => ptr(at(r))?,
                None => out,
            };
            let args: Vec<inkwell::values::BasicMetadataValueEnum<'_>> =
                vec![out.into(), x.into(), wg.into(), bias.unwrap_or(wg).into(), r.into()];
            e.b.build_call(imp, &args, "").map_err(cg)?;
        }
        Op::Dense(d) => {
            let f = shapes[ins[0].index()][1];
            let n = out_shape[0];
            let wg = e.global(&format!("{}.weight", node.name), &wt("weight")?.data);
            let bg = if d.bias { Some(e.global(&format!("{}.bias", node.name), &wt("bias")?.data)) } else { None };
            let (xa, src) = at(ins[0]);
            e.lp(n * d.out_features, &mut |no| {
                let o = e.b.build_int_unsigned_rem(no, e.i64(d.out_features), "o").map_err(cg)?;
                let r = e.b.build_int_unsigned_div(no, e.i64(d.out_features), "r").map_err(cg)?;
                let acc_ptr = e.slot()?;
                e.b.build_store(acc_ptr, e.f(0.0)).map_err(cg)?;
                e.lp(f, &mut |i| {
                    let x = e.load(xa, e.add(e.add(e.mul(r, f)?, i)?, e.i64(src))?)?;
                    let wv = e.load(wg, e.add(e.mul(o, f)?, i)?)?;
                    let acc = e.b.build_load(e.f32t, acc_ptr, "acc").map_err(cg)?.into_float_value();
                    let sum = e.reassoc(e.fadd(acc, e.reassoc(e.fmul(x, wv)?))?);
                    e.b.build_store(acc_ptr, sum).map_err(cg)?;
                    Ok(())
                })?;
                let mut v = e.b.build_load(e.f32t, acc_ptr, "acc").map_err(cg)?.into_float_value();
                if let Some(bg) = bg {
                    v = e.fadd(v, e.load(bg, o)?)?;
                }
                if let Some(act) = d.act {
                    v = e.act(act, v)?;
                }
                e.store(oa, e.add(no, e.i64(out_off))?, v)
            })?;
        }
        Op::AvgPool(p) | Op::MaxPool(p) => {
            let is_max = matches!(node.op, Op::MaxPool(_));
            let s = &shapes[ins[0].index()];
            let (h, wd) = (s[2], s[3]);
            let (oh, ow) = (out_shape[2], out_shape[3]);
            let ([kh, kw], [sy, sx], [ph, pw]) = (p.kernel, p.stride, p.padding);
            let (xa, src) = at(ins[0]);
            // A window of few taps: banded like a depthwise convolution of the window.
            let window = nasc_ir::op::Conv2d {
                out_channels: None,
                kernel: p.kernel,
                stride: p.stride,
                padding: p.padding,
                dilation: [1, 1],
                groups: nasc_ir::op::Groups::DEPTHWISE,
                bias: false,
                act: None,
            };
            if let Some(band) = band_rows(&window, s, out_shape) {
                let reduce = if is_max {
                    Reduce::Max
                } else if p.count_include_pad {
                    Reduce::Mean(None)
                } else {
                    // Taps inside the input per output row and column (the columns a vector
                    // past the row's end, read by a row narrower than a vector).
                    let count = |n: usize, k: usize, st: usize, pad: usize, len: usize| -> Vec<f32> {
                        (0..n)
                            .map(|o| ((o * st + k).min(len + pad).saturating_sub((o * st).max(pad))).max(1) as f32)
                            .collect()
                    };
                    let [rows, mut cols] = [count(oh, kh, sy, ph, h), count(ow, kw, sx, pw, wd)];
                    cols.resize(ow + LANES as usize, 1.0);
                    let [rg, cgl] = [("rows", rows), ("cols", cols)]
                        .map(|(what, v)| e.global(&format!("{}.{what}", node.name), &v));
                    Reduce::Mean(Some((rg, cgl)))
                };
                let [op, xp] = [(oa, out_off), (xa, src)].map(ptr);
                return conv_banded(e, &window, s, out_shape, band, [op?, xp?], reduce);
            }
            // Larger windows: each plane is copied into a scratch bordered by the padding value
            // and as wide and tall as every window reaches, so the windows need no bounds tests
            // and the loop over a row's outputs vectorises (strided for stride 2). An average
            // that excludes padding divides by the window's rows inside the input times its
            // columns inside it. A plane whose scratch would not fit in WIDE_BYTES tests every
            // tap against its bounds instead.
            let sh = ((oh - 1) * sy + kh).max(h + ph);
            let swd = ((ow - 1) * sx + kw).max(wd + pw);
            let fill = e.f(if is_max { Reduce::Max } else { Reduce::Mean(None) }.fill());
            if sh * swd * 4 > WIDE_BYTES {
                e.lp(s[0] * s[1], &mut |nc| {
                    let plane = e.mul(nc, h * wd)?;
                    e.lp(oh, &mut |oy| {
                        e.lp(ow, &mut |ox| {
                            let mut acc = fill;
                            let mut count = e.f(0.0);
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let iy = e.b.build_int_sub(e.add(e.mul(oy, sy)?, e.i64(ky))?, e.i64(ph), "iy");
                                    let iy = iy.map_err(cg)?;
                                    let ix = e.b.build_int_sub(e.add(e.mul(ox, sx)?, e.i64(kx))?, e.i64(pw), "ix");
                                    let ix = ix.map_err(cg)?;
                                    let oky =
                                        e.b.build_int_compare(IntPredicate::ULT, iy, e.i64(h), "oky").map_err(cg)?;
                                    let okx =
                                        e.b.build_int_compare(IntPredicate::ULT, ix, e.i64(wd), "okx").map_err(cg)?;
                                    let ok = e.b.build_and(oky, okx, "ok").map_err(cg)?;
                                    let iyc = e.b.build_select(oky, iy, e.i64(0), "iyc").map_err(cg)?.into_int_value();
                                    let ixc = e.b.build_select(okx, ix, e.i64(0), "ixc").map_err(cg)?.into_int_value();
                                    let v =
                                        e.load(xa, e.add(e.add(plane, e.add(e.mul(iyc, wd)?, ixc)?)?, e.i64(src))?)?;
                                    let cand = if is_max { e.fmax(acc, v)? } else { e.fadd(acc, v)? };
                                    acc = e.b.build_select(ok, cand, acc, "acc").map_err(cg)?.into_float_value();
                                    let c1 = e.fadd(count, e.f(1.0))?;
                                    count = e.b.build_select(ok, c1, count, "n").map_err(cg)?.into_float_value();
                                }
                            }
                            let v = if is_max {
                                acc
                            } else if p.count_include_pad {
                                e.fdiv(acc, e.f((kh * kw) as f32))?
                            } else {
                                e.fdiv(acc, e.fmax(count, e.f(1.0))?)?
                            };
                            let o = e.add(e.add(e.mul(e.add(e.mul(nc, oh)?, oy)?, ow)?, ox)?, e.i64(out_off))?;
                            e.store(oa, o, v)
                        })
                    })
                })?;
            } else {
                let scratch = e.scratch_array(sh * swd, "pool")?;
                e.lp(sh * swd, &mut |i| e.store(scratch, i, fill))?;
                let i64t = e.ctx.i64_type();
                // Taps of a window starting at `start` (padded coordinates) inside `0..n`.
                let inside = |start: IntValue<'ctx>, pad: usize, k: usize, n: usize| -> Result<FloatValue<'ctx>> {
                    let lo = e.b.build_int_sub(start, e.i64(pad), "lo").map_err(cg)?;
                    let hi = e.add(lo, e.i64(k))?;
                    let zero = i64t.const_zero();
                    let lo_pos = e.b.build_int_compare(IntPredicate::SGT, lo, zero, "lp").map_err(cg)?;
                    let lo = e.b.build_select(lo_pos, lo, zero, "lo").map_err(cg)?.into_int_value();
                    let hi_in = e.b.build_int_compare(IntPredicate::SLT, hi, e.i64(n), "hp").map_err(cg)?;
                    let hi = e.b.build_select(hi_in, hi, e.i64(n), "hi").map_err(cg)?.into_int_value();
                    // Through i32: AVX2 has no vector i64 → f32 conversion.
                    let c = e.b.build_int_sub(hi, lo, "c").map_err(cg)?;
                    let c = e.b.build_int_truncate(c, e.ctx.i32_type(), "c32").map_err(cg)?;
                    e.b.build_signed_int_to_float(c, e.f32t, "cf").map_err(cg)
                };
                e.lp(s[0] * s[1], &mut |nc| {
                    let plane = e.add(e.mul(nc, h * wd)?, e.i64(src))?;
                    e.copy_plane((xa, plane), (scratch, e.i64(ph * swd + pw)), [h, wd], swd)?;
                    let orow = e.mul(nc, oh)?;
                    e.lp(oh, &mut |oy| {
                        let row = e.mul(oy, sy * swd)?;
                        let rows_in =
                            if is_max || p.count_include_pad { None } else { Some(inside(e.mul(oy, sy)?, ph, kh, h)?) };
                        let obase = e.add(e.mul(e.add(orow, oy)?, ow)?, e.i64(out_off))?;
                        e.lp(ow, &mut |ox| {
                            let at = e.add(row, e.mul(ox, sx)?)?;
                            let mut acc = fill;
                            for ky in 0..kh {
                                for kx in 0..kw {
                                    let v = e.load(scratch, e.add(at, e.i64(ky * swd + kx))?)?;
                                    acc = if is_max { e.fmax(acc, v)? } else { e.fadd(acc, v)? };
                                }
                            }
                            let v = match rows_in {
                                _ if is_max => acc,
                                None => e.fdiv(acc, e.f((kh * kw) as f32))?,
                                Some(r) => {
                                    let count = e.fmul(r, inside(e.mul(ox, sx)?, pw, kw, wd)?)?;
                                    e.fdiv(acc, e.fmax(count, e.f(1.0))?)?
                                }
                            };
                            e.store(oa, e.add(obase, ox)?, v)
                        })
                    })
                })?;
            }
        }
        Op::GlobalAvgPool => {
            let s = &shapes[ins[0].index()];
            let inner = s[2] * s[3];
            let (xa, src) = at(ins[0]);
            e.lp(s[0] * s[1], &mut |nc| {
                let acc_ptr = e.slot()?;
                e.b.build_store(acc_ptr, e.f(0.0)).map_err(cg)?;
                let base = e.mul(nc, inner)?;
                e.lp(inner, &mut |i| {
                    let v = e.load(xa, e.add(e.add(base, i)?, e.i64(src))?)?;
                    let acc = e.b.build_load(e.f32t, acc_ptr, "acc").map_err(cg)?.into_float_value();
                    e.b.build_store(acc_ptr, e.reassoc(e.fadd(acc, v)?)).map_err(cg)?;
                    Ok(())
                })?;
                let acc = e.b.build_load(e.f32t, acc_ptr, "acc").map_err(cg)?.into_float_value();
                e.store(oa, e.add(nc, e.i64(out_off))?, e.fdiv(acc, e.f(inner as f32))?)
            })?;
        }
        Op::Softmax => {
            let k = out_shape[1];
            let (xa, src) = at(ins[0]);
            e.lp(out_shape[0], &mut |r| {
                let base = e.add(e.mul(r, k)?, e.i64(src))?;
                let obase = e.add(e.mul(r, k)?, e.i64(out_off))?;
                let (m, sum, _) = softmax_sums(e, xa, base, k)?;
                e.lp(k, &mut |c| {
                    let d = e.b.build_float_sub(e.load(xa, e.add(base, c)?)?, m, "d").map_err(cg)?;
                    let x = e.intrinsic("llvm.exp.f32", &[d])?;
                    e.store(oa, e.add(obase, c)?, e.fdiv(x, sum)?)
                })
            })?;
        }
        Op::Concat(cc) => {
            let outer: usize = out_shape[..cc.axis].iter().product();
            let out_chunk: usize = out_shape[cc.axis..].iter().product();
            let mut offset = 0usize;
            for &i in ins {
                let chunk: usize = shapes[i.index()][cc.axis..].iter().product();
                let (xa, src) = at(i);
                let dst = offset;
                e.lp(outer, &mut |o| {
                    e.lp(chunk, &mut |j| {
                        let v = e.load(xa, e.add(e.add(e.mul(o, chunk)?, j)?, e.i64(src))?)?;
                        e.store(oa, e.add(e.add(e.mul(o, out_chunk)?, j)?, e.i64(out_off + dst))?, v)
                    })
                })?;
                offset += chunk;
            }
        }
        Op::SliceChannels(sl) => {
            let s = &shapes[ins[0].index()];
            let inner: usize = s[2..].iter().product();
            let (c, cn) = (s[1], sl.end - sl.start);
            let (xa, src) = at(ins[0]);
            e.lp(s[0], &mut |b| {
                e.lp(cn * inner, &mut |j| {
                    let v = e.load(xa, e.add(e.add(e.mul(b, c * inner)?, j)?, e.i64(src + sl.start * inner))?)?;
                    e.store(oa, e.add(e.add(e.mul(b, cn * inner)?, j)?, e.i64(out_off))?, v)
                })
            })?;
        }
        Op::ChannelShuffle(cs) => {
            let (n, c) = (out_shape[0], out_shape[1]);
            let inner = out_shape[2] * out_shape[3];
            let per = c / cs.groups;
            let (xa, src) = at(ins[0]);
            // Output channel j·groups + gi takes input channel gi·per + j.
            e.lp(n, &mut |b| {
                e.lp(cs.groups, &mut |gi| {
                    e.lp(per, &mut |j| {
                        let s0 = e.add(e.mul(e.add(e.add(e.mul(b, c)?, e.mul(gi, per)?)?, j)?, inner)?, e.i64(src))?;
                        let d0 = e.add(
                            e.mul(e.add(e.add(e.mul(b, c)?, e.mul(j, cs.groups)?)?, gi)?, inner)?,
                            e.i64(out_off),
                        )?;
                        e.lp(inner, &mut |i| {
                            let v = e.load(xa, e.add(i, s0)?)?;
                            e.store(oa, e.add(i, d0)?, v)
                        })
                    })
                })
            })?;
        }
        Op::Gate(_) => {
            // The driver decided; the value is the body's when open, else the skip's. The body
            // is only computed when open, so read the decision again from the logit or the
            // probability.
            let Op::Gate(gt) = &node.op else { unreachable!("matched") };
            let n = numel(out_shape);
            let (skip, body) = (ptr(at(ins[0]))?, ptr(at(ins[1]))?);
            let open = match gt.decision {
                GateDecision::Logit => {
                    let (la, l) = at(ins[2]);
                    let v = e.load(la, e.i64(l))?;
                    e.b.build_float_compare(FloatPredicate::OGT, v, e.f(0.0), "open").map_err(cg)?
                }
                GateDecision::External { probability } => {
                    e.ctx.bool_type().const_int(u64::from(probability >= 0.5), false)
                }
            };
            let src = e.b.build_select(open, body, skip, "src").map_err(cg)?.into_pointer_value();
            e.lp(n, &mut |i| {
                let v = e.load(src, i)?;
                e.store(oa, e.add(i, e.i64(out_off))?, v)
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

/// Marks every defined function with the CPU and features to generate code for. MCJIT builds
/// its own target machine for the generic CPU of the triple; the per-function attributes make
/// its code generator (and the IR passes' cost models) use the real one — without them the
/// JIT ran the vectorised kernels as SSE2 code without FMA, at half the speed of the same
/// module compiled ahead of time.
fn set_target_attributes(ctx: &Context, module: &Module<'_>, cpu: &str, features: &str) {
    let mut f = module.get_first_function();
    while let Some(func) = f {
        if func.count_basic_blocks() > 0 {
            func.add_attribute(AttributeLoc::Function, ctx.create_string_attribute("target-cpu", cpu));
            if !features.is_empty() {
                func.add_attribute(AttributeLoc::Function, ctx.create_string_attribute("target-features", features));
            }
        }
        f = func.get_next_function();
    }
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
        let cpu = tm.get_cpu().to_string();
        let features = tm.get_feature_string().to_string_lossy().into_owned();
        set_target_attributes(context, &module, &cpu, &features);
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

    /// Input size in f32 values.
    pub fn input_len(&self) -> usize {
        self.input_len
    }

    /// Output size in f32 values.
    pub fn output_len(&self) -> usize {
        self.output_len
    }

    /// Runs into caller-owned buffers (no allocation: what a measurement loop calls); returns
    /// the exit taken.
    pub fn run_into(&self, input: &[f32], output: &mut [f32], arena: &mut [f32]) -> Result<usize> {
        if input.len() != self.input_len || output.len() != self.output_len || arena.len() < self.plan.elements {
            return Err(CodegenError(format!(
                "buffers of {}/{}/{} values; the network takes {} in, {} out, an arena of {}",
                input.len(),
                output.len(),
                arena.len(),
                self.input_len,
                self.output_len,
                self.plan.elements
            )));
        }
        let k = unsafe { self.infer.call(input.as_ptr(), output.as_mut_ptr(), arena.as_mut_ptr()) };
        Ok(k as usize)
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

/// A GNU `ar` archive of one object member with a symbol index naming `symbols` (what GNU ld
/// and lld need to pull the member in), with zero timestamps and owners so it is reproducible.
fn archive(member: &str, obj: &[u8], symbols: &[String]) -> Vec<u8> {
    fn header(out: &mut Vec<u8>, name: &str, mode: &str, size: usize) {
        out.extend_from_slice(format!("{name:<16}{:<12}{:<6}{:<6}{mode:<8}{size:<10}`\n", 0, 0, 0).as_bytes());
    }
    let mut index = Vec::new();
    let names: usize = symbols.iter().map(|s| s.len() + 1).sum();
    let index_size = 4 + 4 * symbols.len() + names;
    let padded = index_size + index_size % 2;
    let member_at = 8 + 60 + padded;
    index.extend_from_slice(&(symbols.len() as u32).to_be_bytes());
    for _ in symbols {
        index.extend_from_slice(&(member_at as u32).to_be_bytes());
    }
    for s in symbols {
        index.extend_from_slice(s.as_bytes());
        index.push(0);
    }
    let mut out = b"!<arch>\n".to_vec();
    header(&mut out, "/", "0", index_size);
    out.extend_from_slice(&index);
    if index_size % 2 == 1 {
        out.push(b'\n');
    }
    header(&mut out, &format!("{member}/"), "644", obj.len());
    out.extend_from_slice(obj);
    if obj.len() % 2 == 1 {
        out.push(b'\n');
    }
    out
}

/// Writes `dir/file` through a temporary name and a rename: no half-written artifact.
fn write_file(dir: &Path, file: &str, bytes: &[u8]) -> Result<std::path::PathBuf> {
    let path = dir.join(file);
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, bytes).map_err(|e| CodegenError(format!("{}: {e}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(|e| CodegenError(format!("{}: {e}", path.display())))?;
    Ok(path)
}

/// What [`emit`] wrote, and how long each phase took.
#[derive(Clone, Debug)]
pub struct Emitted {
    /// The arena plan.
    pub plan: ArenaPlan,
    /// The files written.
    pub files: Vec<std::path::PathBuf>,
    /// Seconds spent lowering the graph to LLVM IR.
    pub lower_s: f64,
    /// Seconds in LLVM's IR optimisation pipeline.
    pub optimise_s: f64,
    /// Seconds in code generation (instruction selection onwards) and writing the files.
    pub write_s: f64,
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
    /// A static library `libNAME.a` holding the object (GNU ar format with a symbol index).
    StaticLib,
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
    opt: Opt,
    external_weights: bool,
) -> Result<Emitted> {
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
    if tm.get_target_data().get_byte_ordering() != inkwell::targets::ByteOrdering::LittleEndian {
        return Err(CodegenError(format!("{}: big-endian targets are not supported", machine.triple)));
    }
    let context = Context::create();
    let module = context.create_module(name);
    module.set_triple(&triple);
    module.set_data_layout(&tm.get_target_data().get_data_layout());
    let t0 = std::time::Instant::now();
    let (plan, blob) = lower_with(&context, &module, graph, weights, name, external_weights)?;
    set_target_attributes(&context, &module, &machine.cpu, &machine.features);
    let t1 = std::time::Instant::now();
    optimise(&module, &tm, opt)?;
    let t2 = std::time::Instant::now();
    let shapes = graph.infer_shapes().map_err(cg)?;
    let mut files = Vec::new();
    // The object is generated once even when both it and the static library are asked for.
    let mut object: Option<Vec<u8>> = None;
    let mut object_bytes = || -> Result<Vec<u8>> {
        if object.is_none() {
            object = Some(tm.write_to_memory_buffer(&module, FileType::Object).map_err(cg)?.as_slice().to_vec());
        }
        Ok(object.clone().expect("just set"))
    };
    for w in what {
        let (ext, bytes): (&str, Vec<u8>) = match w {
            Emit::Object => ("o", object_bytes()?),
            Emit::Assembly => {
                ("s", tm.write_to_memory_buffer(&module, FileType::Assembly).map_err(cg)?.as_slice().to_vec())
            }
            Emit::LlvmIr => ("ll", module.print_to_string().to_bytes().to_vec()),
            Emit::Header => {
                let ext = external_weights.then_some(blob.len() * 4);
                ("h", header(graph, &shapes, name, &plan, ext)?.into_bytes())
            }
            Emit::StaticLib => {
                let obj = object_bytes()?;
                let mut symbols = vec![format!("{name}_infer"), format!("{name}_set_threshold")];
                if external_weights {
                    symbols.push(format!("{name}_set_weights"));
                }
                ("a", archive(&format!("{name}.o"), &obj, &symbols))
            }
        };
        let file = if *w == Emit::StaticLib { format!("lib{name}.a") } else { format!("{name}.{ext}") };
        files.push(write_file(dir, &file, &bytes)?);
    }
    if external_weights {
        let bytes: Vec<u8> = blob.iter().flat_map(|v| v.to_le_bytes()).collect();
        files.push(write_file(dir, &format!("{name}.weights"), &bytes)?);
    }
    let t3 = std::time::Instant::now();
    Ok(Emitted {
        plan,
        files,
        lower_s: (t1 - t0).as_secs_f64(),
        optimise_s: (t2 - t1).as_secs_f64(),
        write_s: (t3 - t2).as_secs_f64(),
    })
}

fn header(graph: &Graph, shapes: &[Shape], name: &str, plan: &ArenaPlan, external: Option<usize>) -> Result<String> {
    let inp = graph.input_node().map_err(cg)?;
    let out = graph.output_node().map_err(cg)?;
    let up = name.to_ascii_uppercase();
    let exits: Vec<String> = graph.exits().iter().map(|&e| graph.node(e).name.clone()).collect();
    Ok(format!(
        "/* Generated by nasc: {name}. Input {:?}, output {:?}. */\n#ifndef {up}_H\n#define {up}_H\n#include <stdint.h>\n\n#define {up}_INPUT_SIZE {}\n#define {up}_OUTPUT_SIZE {}\n#define {up}_ARENA_BYTES {}\n#define {up}_EXITS {} /* {} */\n/* The largest scratch one kernel keeps on the caller's stack: call {name}_infer on a thread\n   with this much stack to spare. */\n#define {up}_STACK_BYTES {}\n\n/* Runs the network; returns the exit taken (0..EXITS-1), or EXITS for the final output.\n   `input` is read in place and `output` written directly: they must not overlap. */\nint32_t {name}_infer(const float *input, float *output, void *arena);\n/* Overrides exit `exit`'s threshold. */\nvoid {name}_set_threshold(int32_t exit, float theta);\n{}\n#endif\n",
        shapes[inp.index()],
        shapes[graph.inputs(out)[0].index()],
        numel(&shapes[inp.index()]),
        numel(&shapes[graph.inputs(out)[0].index()]),
        plan.bytes(),
        exits.len(),
        exits.join(", "),
        plan.stack_bytes,
        match external {
            Some(bytes) => format!(
                "\n/* Weights are external: load {name}.weights ({bytes} bytes, f32 little-endian) and pass\n   it, 64-byte aligned, before the first {name}_infer; it must stay alive. */\n#define {up}_WEIGHTS_EXTERNAL 1\n#define {up}_WEIGHTS_BYTES {bytes}\nvoid {name}_set_weights(const float *weights);\n"
            ),
            None => String::new(),
        }
    ))
}
