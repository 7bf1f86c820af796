//! Packing of padded batches: the position-wise parts of the decoder run over the real tokens only.
//!
//! A left-padded batch `[B, L]` (prompts of different lengths) or a right-padded one (targets) holds padding
//! that every projection, RMSNorm and MLP would otherwise compute and throw away: on the first 8 CDs training
//! samples, 984 prompt positions for 807 real tokens. Only attention mixes positions, so the decoder keeps its
//! residual stream as the rows `[N, d]` of the `N` real tokens ([`Rows::pack`]) and lays the q, k and v
//! projections out as `[B, L, ·]` for attention ([`Rows::unpack`], zeros at padding), which the attention mask
//! hides anyway. The function is unchanged at real positions; at padded positions the outputs are zeros
//! instead of values that no caller reads (the padding contract of [`crate::attention::attention_mask`]).
//!
//! Both directions are single gather/scatter ops (`select`, `select_assign`), differentiable, so training
//! saves the padding's share of the forward and the backward work alike.

use burn::tensor::{Bool, Device, IndexingUpdateOp, Int, Tensor, TensorData};

/// Pack only when at least this fraction of the positions is padding: below it the gathers and scatters (four
/// per layer) cost about what the skipped rows would.
const MIN_PADDED_FRACTION: f64 = 1.0 / 16.0;

/// How the `B·L` positions of a batch map to the rows that position-wise layers compute: all of them (dense, a
/// free reshape) or only the real ones (packed). Callers outside the decoder use it too, e.g. to compute
/// logits only at real target positions.
#[derive(Clone, Debug)]
pub struct Rows {
    batch: usize,
    len: usize,
    /// `[N]`: the flat index `b·L + l` of each real position, in row-major order; `None`: every position is a row.
    real: Option<Tensor<1, Int>>,
}

impl Rows {
    /// Every position is a row.
    pub fn dense(batch: usize, len: usize) -> Self {
        Rows { batch, len, real: None }
    }

    /// The rows of a batch with the padding `[B, L]` (`true` = real): packed when enough of it is padding
    /// ([`MIN_PADDED_FRACTION`]), dense otherwise. Reads the mask back to the host.
    pub fn from_padding(padding: &Tensor<2, Bool>) -> Self {
        let [batch, len] = padding.dims();
        let real: Vec<bool> = padding.clone().int().into_data().iter::<i64>().map(|v| v != 0).collect();
        Self::from_host(&real, batch, len, &padding.device())
    }

    /// As [`Rows::from_padding`], from a host mask `[B, L]` row-major.
    pub fn from_host(real: &[bool], batch: usize, len: usize, device: &Device) -> Self {
        assert_eq!(real.len(), batch * len, "padding mask of {} values for [{batch}, {len}]", real.len());
        let index: Vec<i64> = real.iter().enumerate().filter(|&(_, &r)| r).map(|(i, _)| i as i64).collect();
        let padded = real.len() - index.len();
        if index.is_empty() || (padded as f64) < MIN_PADDED_FRACTION * real.len() as f64 {
            return Self::dense(batch, len);
        }
        let n = index.len();
        Rows { batch, len, real: Some(Tensor::from_data(TensorData::new(index, [n]), device)) }
    }

    /// The number of rows: `N` real positions when packed, `B·L` otherwise.
    pub fn count(&self) -> usize {
        self.real.as_ref().map_or(self.batch * self.len, |r| r.dims()[0])
    }

    /// `[B, L, c]` → `[rows, c]`: the rows of the real positions (all positions when dense).
    pub fn pack(&self, x: Tensor<3>) -> Tensor<2> {
        let [b, l, c] = x.dims();
        assert_eq!(
            [b, l],
            [self.batch, self.len],
            "packing a [{b}, {l}, _] tensor with [{}, {}] rows",
            self.batch,
            self.len
        );
        let flat = x.reshape([b * l, c]);
        match &self.real {
            None => flat,
            Some(index) => flat.select(0, index.clone()), // [N, c]
        }
    }

    /// `[rows, c]` → `[B, L, c]`, zeros at the padded positions.
    pub fn unpack(&self, x: Tensor<2>) -> Tensor<3> {
        let [n, c] = x.dims();
        assert_eq!(n, self.count(), "unpacking {n} rows, expected {}", self.count());
        let (b, l) = (self.batch, self.len);
        match &self.real {
            None => x.reshape([b, l, c]),
            Some(index) => {
                let device = x.device();
                let zeros = Tensor::<2>::zeros([b * l, c], (&device, x.dtype()));
                zeros.select_assign(0, index.clone(), x, IndexingUpdateOp::Add).reshape([b, l, c]) // [B, L, c]
            }
        }
    }

    /// `[B, L]` ids → `[rows]`: the ids at the rows' positions.
    pub fn pack_ids(&self, ids: Tensor<2, Int>) -> Tensor<1, Int> {
        let [b, l] = ids.dims();
        assert_eq!([b, l], [self.batch, self.len], "packing [{b}, {l}] ids with [{}, {}] rows", self.batch, self.len);
        let flat = ids.reshape([b * l]);
        match &self.real {
            None => flat,
            Some(index) => flat.select(0, index.clone()), // [N]
        }
    }

    /// Whether only the real positions are rows.
    pub fn is_packed(&self) -> bool {
        self.real.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_device;
    use burn::tensor::Distribution;

    #[test]
    fn pack_then_unpack_keeps_real_rows_and_zeroes_padding() {
        let device = test_device();
        let real = [false, false, true, true, true, true, true, false];
        let rows = Rows::from_host(&real, 2, 4, &device);
        assert!(rows.is_packed());
        assert_eq!(rows.count(), 5);
        let x = Tensor::<3>::random([2, 4, 3], Distribution::Normal(0.0, 1.0), &device);
        let back: Vec<f32> = rows.unpack(rows.pack(x.clone())).into_data().try_into_vec().unwrap();
        let orig: Vec<f32> = x.into_data().try_into_vec().unwrap();
        for (i, &r) in real.iter().enumerate() {
            let (got, want) = (&back[i * 3..i * 3 + 3], &orig[i * 3..i * 3 + 3]);
            if r {
                assert_eq!(got, want, "row {i}");
            } else {
                assert_eq!(got, [0.0; 3], "padded row {i}");
            }
        }
    }

    #[test]
    fn little_or_no_padding_stays_dense() {
        let device = test_device();
        assert!(!Rows::from_host(&[true; 32], 4, 8, &device).is_packed());
        let mut real = [true; 32];
        real[0] = false; // 1/32 < 1/16
        assert!(!Rows::from_host(&real, 4, 8, &device).is_packed());
        real[8] = false; // 2/32 = 1/16
        assert!(Rows::from_host(&real, 4, 8, &device).is_packed());
    }

    /// Gradients flow through both directions: d(sum(unpack(pack(x)) ⊙ w))/dx = w at real positions, 0 at padding.
    #[test]
    fn gradients_flow_to_real_positions_only() {
        let device = test_device().autodiff();
        let real = [true, false, true, true];
        let rows = Rows::from_host(&real, 2, 2, &device);
        let x = Tensor::<3>::ones([2, 2, 2], &device).require_grad();
        let w = Tensor::<3>::from_data([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]], &device);
        let grads = (rows.unpack(rows.pack(x.clone())) * w).sum().backward();
        let g: Vec<f32> = x.grad(&grads).unwrap().into_data().try_into_vec().unwrap();
        assert_eq!(g, [1.0, 2.0, 0.0, 0.0, 5.0, 6.0, 7.0, 8.0]);
    }
}
