//! Dequantisation of the ggml storage types to f32, bit-exact with ggml's reference `dequantize_row_*`.
//!
//! Block layouts (ggml `ggml-common.h`), `d`/`m`/`dmin` are f16 unless noted:
//! - `Q4_0` (18 B / 32): `d`, 16 B of nibbles; `x = (q - 8)·d`, low nibbles are elements 0..15.
//! - `Q4_1` (20 B / 32): `d`, `m`, 16 B of nibbles; `x = q·d + m`.
//! - `Q5_0` (22 B / 32): `d`, `u32 qh` (5th bits), 16 B of nibbles; `x = (q - 16)·d`.
//! - `Q5_1` (24 B / 32): `d`, `m`, `qh`, 16 B; `x = q·d + m`.
//! - `Q8_0` (34 B / 32): `d`, 32 `i8`; `x = q·d`.
//! - `Q4_K` (144 B / 256): `d`, `dmin`, 12 B of packed 6-bit scales and mins, 128 B of nibbles.
//! - `Q5_K` (176 B / 256): as `Q4_K` plus 32 B of 5th bits before the nibbles.
//! - `Q6_K` (210 B / 256): 128 B low nibbles, 64 B high 2-bit pairs, 16 `i8` scales, then `d`.

use half::{bf16, f16};

/// A ggml storage type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// 16-bit IEEE float.
    F16,
    /// bfloat16.
    BF16,
    /// 4-bit, block 32, scale.
    Q4_0,
    /// 4-bit, block 32, scale and minimum.
    Q4_1,
    /// 5-bit, block 32, scale.
    Q5_0,
    /// 5-bit, block 32, scale and minimum.
    Q5_1,
    /// 8-bit, block 32, scale.
    Q8_0,
    /// 4-bit k-quant, super-block 256.
    Q4_K,
    /// 5-bit k-quant, super-block 256.
    Q5_K,
    /// 6-bit k-quant, super-block 256.
    Q6_K,
    /// A type the file may declare but this loader does not dequantise (its ggml id).
    Other(u32),
}

impl GgmlType {
    /// The type of a ggml type id.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            6 => GgmlType::Q5_0,
            7 => GgmlType::Q5_1,
            8 => GgmlType::Q8_0,
            12 => GgmlType::Q4_K,
            13 => GgmlType::Q5_K,
            14 => GgmlType::Q6_K,
            30 => GgmlType::BF16,
            // Known ggml types we do not dequantise: Q8_1, Q2_K, Q3_K, Q8_K, IQ*, I8..I64, F64, TQ*, MXFP4.
            9..=11 | 15..=29 | 31..=39 => GgmlType::Other(id),
            _ => return None,
        })
    }

    /// The ggml type id.
    pub fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q5_0 => 6,
            GgmlType::Q5_1 => 7,
            GgmlType::Q8_0 => 8,
            GgmlType::Q4_K => 12,
            GgmlType::Q5_K => 13,
            GgmlType::Q6_K => 14,
            GgmlType::BF16 => 30,
            GgmlType::Other(id) => id,
        }
    }

    /// The name ggml and gguf-py use (`Q4_K`, `F32`, ...).
    pub fn name(self) -> String {
        match self {
            GgmlType::Other(id) => format!("ggml type {id}"),
            t => format!("{t:?}"),
        }
    }

    /// Elements per block (1 for plain floats).
    pub fn block_len(self) -> u64 {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::BF16 | GgmlType::Other(_) => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q5_0 | GgmlType::Q5_1 | GgmlType::Q8_0 => 32,
            GgmlType::Q4_K | GgmlType::Q5_K | GgmlType::Q6_K => 256,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> u64 {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::BF16 => 2,
            GgmlType::Q4_0 => 18,
            GgmlType::Q4_1 => 20,
            GgmlType::Q5_0 => 22,
            GgmlType::Q5_1 => 24,
            GgmlType::Q8_0 => 34,
            GgmlType::Q4_K => 144,
            GgmlType::Q5_K => 176,
            GgmlType::Q6_K => 210,
            // Unknown sizes: treated as one byte per element so that bounds checks still hold; reading such a
            // tensor is refused by `dequantize`.
            GgmlType::Other(_) => 1,
        }
    }

    /// Bytes taken by `n` elements (`n` a multiple of the block length), saturating on overflow.
    pub fn row_bytes(self, n: u64) -> u64 {
        (n / self.block_len()).saturating_mul(self.block_bytes())
    }
}

fn h(b: &[u8], i: usize) -> f32 {
    f16::from_le_bytes([b[i], b[i + 1]]).to_f32()
}

/// The 6-bit scale and minimum `j` (0..8) of a `Q4_K`/`Q5_K` super-block (ggml `get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (u8, u8) {
    if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    }
}

/// Dequantises `n` elements of type `ty` from `raw` (which must hold exactly `ty.row_bytes(n)` bytes).
pub fn dequantize(ty: GgmlType, raw: &[u8], n: usize) -> Result<Vec<f32>, String> {
    if !(n as u64).is_multiple_of(ty.block_len()) {
        return Err(format!("{n} elements are not whole blocks of {}", ty.block_len()));
    }
    let want = ty.row_bytes(n as u64);
    if raw.len() as u64 != want {
        return Err(format!("{} bytes for {n} {} elements, expected {want}", raw.len(), ty.name()));
    }
    let mut y = Vec::with_capacity(n);
    let bb = ty.block_bytes() as usize;
    match ty {
        GgmlType::F32 => y.extend(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        GgmlType::F16 => y.extend(raw.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())),
        GgmlType::BF16 => y.extend(raw.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())),
        GgmlType::Q8_0 => {
            for b in raw.chunks_exact(bb) {
                let d = h(b, 0);
                y.extend(b[2..34].iter().map(|&q| f32::from(q as i8) * d));
            }
        }
        GgmlType::Q4_0 => {
            for b in raw.chunks_exact(bb) {
                let (d, qs) = (h(b, 0), &b[2..18]);
                y.extend(qs.iter().map(|&q| (i32::from(q & 0xF) - 8) as f32 * d));
                y.extend(qs.iter().map(|&q| (i32::from(q >> 4) - 8) as f32 * d));
            }
        }
        GgmlType::Q4_1 => {
            for b in raw.chunks_exact(bb) {
                let (d, m, qs) = (h(b, 0), h(b, 2), &b[4..20]);
                y.extend(qs.iter().map(|&q| f32::from(q & 0xF) * d + m));
                y.extend(qs.iter().map(|&q| f32::from(q >> 4) * d + m));
            }
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 => {
            let with_min = ty == GgmlType::Q5_1;
            for b in raw.chunks_exact(bb) {
                let d = h(b, 0);
                let o = if with_min { 4 } else { 2 };
                let qh = u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
                let qs = &b[o + 4..o + 20];
                let lo = |j: usize| (qs[j] & 0x0F) as u32 | (((qh >> j) << 4) & 0x10);
                let hi = |j: usize| (qs[j] >> 4) as u32 | ((qh >> (j + 12)) & 0x10);
                if with_min {
                    let m = h(b, 2);
                    y.extend((0..16).map(|j| lo(j) as f32 * d + m));
                    y.extend((0..16).map(|j| hi(j) as f32 * d + m));
                } else {
                    y.extend((0..16).map(|j| (lo(j) as i32 - 16) as f32 * d));
                    y.extend((0..16).map(|j| (hi(j) as i32 - 16) as f32 * d));
                }
            }
        }
        GgmlType::Q4_K | GgmlType::Q5_K => {
            let five = ty == GgmlType::Q5_K;
            for b in raw.chunks_exact(bb) {
                let (d, dmin) = (h(b, 0), h(b, 2));
                let scales = &b[4..16];
                let (qh, ql) = if five { (&b[16..48], &b[48..176]) } else { (&b[0..0], &b[16..144]) };
                for (g, q) in ql.chunks_exact(32).enumerate() {
                    let is = 2 * g;
                    let (sc1, m1) = scale_min_k4(is, scales);
                    let (sc2, m2) = scale_min_k4(is + 1, scales);
                    let (d1, m1) = (d * f32::from(sc1), dmin * f32::from(m1));
                    let (d2, m2) = (d * f32::from(sc2), dmin * f32::from(m2));
                    let (u1, u2) = (1u8 << (2 * g), 2u8 << (2 * g));
                    let high = |l: usize, u: u8| if five && qh[l] & u != 0 { 16.0 } else { 0.0 };
                    y.extend((0..32).map(|l| d1 * (f32::from(q[l] & 0xF) + high(l, u1)) - m1));
                    y.extend((0..32).map(|l| d2 * (f32::from(q[l] >> 4) + high(l, u2)) - m2));
                }
            }
        }
        GgmlType::Q6_K => {
            for b in raw.chunks_exact(bb) {
                let d = h(b, 208);
                for half_ in 0..2 {
                    let ql = &b[64 * half_..64 * half_ + 64];
                    let qh = &b[128 + 32 * half_..128 + 32 * half_ + 32];
                    let sc = &b[192 + 8 * half_..192 + 8 * half_ + 8];
                    let mut out = [0f32; 128];
                    for l in 0..32 {
                        let is = l / 16;
                        let q1 = ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) as i32 - 32;
                        let q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                        let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                        let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                        let s = |k: usize| f32::from(sc[is + k] as i8);
                        out[l] = d * s(0) * q1 as f32;
                        out[l + 32] = d * s(2) * q2 as f32;
                        out[l + 64] = d * s(4) * q3 as f32;
                        out[l + 96] = d * s(6) * q4 as f32;
                    }
                    y.extend_from_slice(&out);
                }
            }
        }
        GgmlType::Other(id) => {
            return Err(format!(
                "ggml type {id} is not supported (supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, \
                 Q5_K, Q6_K): convert the model with llama.cpp's `llama-quantize` to one of those"
            ));
        }
    }
    Ok(y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16b(x: f32) -> [u8; 2] {
        f16::from_f32(x).to_le_bytes()
    }

    #[test]
    fn q8_0_and_q4_1_by_hand() {
        // Q8_0: d = 0.5, q = -16..16 → x = q / 2.
        let mut b = f16b(0.5).to_vec();
        b.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let y = dequantize(GgmlType::Q8_0, &b, 32).unwrap();
        assert_eq!(y[0], -8.0);
        assert_eq!(y[31], 7.5);
        // Q4_1: d = 1, m = -2; byte j holds element j in its low nibble and element j + 16 in its high nibble.
        let mut b = f16b(1.0).to_vec();
        b.extend(f16b(-2.0));
        b.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let y = dequantize(GgmlType::Q4_1, &b, 32).unwrap();
        assert_eq!(&y[..3], &[-2.0, -1.0, 0.0]);
        assert_eq!(y[16], 13.0);
        assert_eq!(y[31], -2.0);
    }

    #[test]
    fn q5_0_uses_the_fifth_bits() {
        // d = 1; all nibbles 0; qh sets the 5th bit of element 0 (bit 0) and element 16 (bit 16).
        let mut b = f16b(1.0).to_vec();
        b.extend(((1u32 << 0) | (1u32 << 16)).to_le_bytes());
        b.extend([0u8; 16]);
        let y = dequantize(GgmlType::Q5_0, &b, 32).unwrap();
        assert_eq!(y[0], 0.0); // (0 | 16) - 16
        assert_eq!(y[1], -16.0);
        assert_eq!(y[16], 0.0);
        assert_eq!(y[17], -16.0);
    }

    #[test]
    fn sizes_are_checked() {
        assert!(dequantize(GgmlType::Q8_0, &[0; 33], 32).unwrap_err().contains("expected 34"));
        assert!(dequantize(GgmlType::Q4_K, &[0; 144], 255).is_err());
        assert!(dequantize(GgmlType::Other(10), &[0; 32], 32).unwrap_err().contains("llama-quantize"));
        assert_eq!(GgmlType::Q6_K.row_bytes(512), 420);
    }
}
