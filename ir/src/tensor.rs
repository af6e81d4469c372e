//! A dense `f32` tensor, row-major, batch first.

use crate::shape::numel;

/// A dense row-major `f32` tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    /// Shape, batch first.
    pub shape: Vec<usize>,
    /// Values, row-major; `data.len() == shape.iter().product()`.
    pub data: Vec<f32>,
}

impl Tensor {
    /// A tensor from a shape and values. Returns `None` if the sizes disagree.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Option<Self> {
        (numel(&shape) == data.len()).then_some(Tensor { shape, data })
    }

    /// Zeros of a shape.
    pub fn zeros(shape: &[usize]) -> Self {
        Tensor { shape: shape.to_vec(), data: vec![0.0; numel(shape)] }
    }

    /// A tensor whose value at flat index `i` is `f(i)`.
    pub fn from_fn(shape: &[usize], f: impl FnMut(usize) -> f32) -> Self {
        Tensor { shape: shape.to_vec(), data: (0..numel(shape)).map(f).collect() }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Flat index of `[n, c, h, w]` in a rank-4 tensor.
    #[inline]
    pub fn idx4(&self, n: usize, c: usize, h: usize, w: usize) -> usize {
        ((n * self.shape[1] + c) * self.shape[2] + h) * self.shape[3] + w
    }

    /// Largest absolute difference relative to `max(1, |b|)`, elementwise; `None` when the
    /// shapes differ.
    pub fn max_rel_diff(&self, other: &Tensor) -> Option<f32> {
        if self.shape != other.shape {
            return None;
        }
        Some(self.data.iter().zip(&other.data).map(|(a, b)| (a - b).abs() / b.abs().max(1.0)).fold(0.0, f32::max))
    }
}
