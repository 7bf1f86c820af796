//! CPython 3's `random` module, bit for bit, for the parts `process.py` uses: `random.seed(int)` and
//! `random.shuffle(list)`.
//!
//! The official script numbers the items with `random.seed(42); random.shuffle(items)`, so reproducing its item
//! ids needs CPython's Mersenne Twister (MT19937, `Modules/_randommodule.c`) and its shuffle
//! (`Lib/random.py`), not just any MT19937: the seeding goes through `init_by_array` with the 32-bit words of
//! `abs(seed)`, `getrandbits(k)` keeps the top `k` bits of a 32-bit draw, and `_randbelow(n)` rejects draws of
//! `n.bit_length()` bits until one is below `n`.

const N: usize = 624;
const M: usize = 397;
const MATRIX_A: u32 = 0x9908_b0df;
const UPPER_MASK: u32 = 0x8000_0000;
const LOWER_MASK: u32 = 0x7fff_ffff;

/// A `random.Random` instance of CPython 3: the MT19937 state and the methods `process.py` needs.
#[derive(Clone)]
pub struct PyRandom {
    mt: [u32; N],
    index: usize,
}

impl std::fmt::Debug for PyRandom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PyRandom").field("index", &self.index).finish_non_exhaustive()
    }
}

impl PyRandom {
    /// `random.seed(seed)` for a non-negative integer seed (CPython takes `abs()` of a negative one).
    ///
    /// The key of `init_by_array` is the seed's 32-bit words, least significant first, with as many words as the
    /// seed needs and at least one (so `0` gives the key `[0]`).
    pub fn seed(seed: u64) -> Self {
        let key: Vec<u32> = if seed >> 32 == 0 { vec![seed as u32] } else { vec![seed as u32, (seed >> 32) as u32] };
        Self::from_key(&key)
    }

    /// `init_by_array(key)` of the MT19937 reference code, as CPython calls it.
    ///
    /// # Panics
    /// When `key` is empty (CPython always passes at least one word).
    pub fn from_key(key: &[u32]) -> Self {
        assert!(!key.is_empty(), "init_by_array needs at least one key word");
        let mut r = PyRandom { mt: [0; N], index: N };
        r.init_genrand(19_650_218);
        let mt = &mut r.mt;
        let (mut i, mut j) = (1usize, 0usize);
        for _ in 0..N.max(key.len()) {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_664_525)).wrapping_add(key[j]).wrapping_add(j as u32);
            i += 1;
            j += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
            if j >= key.len() {
                j = 0;
            }
        }
        for _ in 0..N - 1 {
            let prev = mt[i - 1] ^ (mt[i - 1] >> 30);
            mt[i] = (mt[i] ^ prev.wrapping_mul(1_566_083_941)).wrapping_sub(i as u32);
            i += 1;
            if i >= N {
                mt[0] = mt[N - 1];
                i = 1;
            }
        }
        // The most significant bit is 1, which guarantees a non-zero initial state.
        mt[0] = 0x8000_0000;
        r
    }

    fn init_genrand(&mut self, s: u32) {
        self.mt[0] = s;
        for i in 1..N {
            let prev = self.mt[i - 1] ^ (self.mt[i - 1] >> 30);
            self.mt[i] = 1_812_433_253u32.wrapping_mul(prev).wrapping_add(i as u32);
        }
        self.index = N;
    }

    fn twist(&mut self) {
        let mag = |y: u32| if y & 1 == 0 { 0 } else { MATRIX_A };
        for kk in 0..N {
            let y = (self.mt[kk] & UPPER_MASK) | (self.mt[(kk + 1) % N] & LOWER_MASK);
            self.mt[kk] = self.mt[(kk + M) % N] ^ (y >> 1) ^ mag(y);
        }
        self.index = 0;
    }

    /// `genrand_uint32()`: the next tempered 32-bit output.
    pub fn next_u32(&mut self) -> u32 {
        if self.index >= N {
            self.twist();
        }
        let mut y = self.mt[self.index];
        self.index += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `getrandbits(k)` for `k <= 64`.
    ///
    /// For `k <= 32` this is one draw shifted right by `32 - k`; for larger `k` CPython fills 32-bit words from
    /// the least significant one up, the last word keeping the top `k mod 32` bits of its draw.
    ///
    /// # Panics
    /// When `k > 64`.
    pub fn getrandbits(&mut self, k: u32) -> u64 {
        assert!(k <= 64, "getrandbits({k}): only k <= 64 is implemented");
        if k == 0 {
            return 0;
        }
        let (mut value, mut left, mut shift) = (0u64, k, 0u32);
        while left > 0 {
            let mut r = self.next_u32();
            if left < 32 {
                r >>= 32 - left;
            }
            value |= u64::from(r) << shift;
            shift += 32;
            left = left.saturating_sub(32);
        }
        value
    }

    /// `_randbelow(n)`: a uniform integer in `0..n` by rejection sampling of `n.bit_length()`-bit draws.
    ///
    /// # Panics
    /// When `n == 0`.
    pub fn randbelow(&mut self, n: u64) -> u64 {
        assert!(n > 0, "randbelow(0) is undefined");
        let k = u64::BITS - n.leading_zeros();
        let mut r = self.getrandbits(k);
        while r >= n {
            r = self.getrandbits(k);
        }
        r
    }

    /// `random.shuffle(x)`: Fisher–Yates from the last position down, `j = _randbelow(i + 1)`.
    pub fn shuffle<T>(&mut self, x: &mut [T]) {
        for i in (1..x.len()).rev() {
            let j = self.randbelow(i as u64 + 1) as usize;
            x.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values were printed by CPython 3.11.7 on this machine, e.g.
    // `python3 -c "import random; random.seed(42); x=list(range(20)); random.shuffle(x); print(x)"`.

    #[test]
    fn shuffle_of_20_matches_cpython() {
        let mut x: Vec<u32> = (0..20).collect();
        PyRandom::seed(42).shuffle(&mut x);
        assert_eq!(x, [19, 5, 14, 4, 9, 13, 15, 18, 6, 12, 17, 10, 1, 11, 2, 16, 7, 8, 0, 3]);
    }

    #[test]
    fn getrandbits_matches_cpython() {
        // random.seed(42); [getrandbits(32) for _ in range(3)], getrandbits(64), getrandbits(1),
        // getrandbits(33), getrandbits(7)
        let mut r = PyRandom::seed(42);
        let words: Vec<u64> = (0..3).map(|_| r.getrandbits(32)).collect();
        assert_eq!(words, [2_746_317_213, 478_163_327, 107_420_369]);
        assert_eq!(r.getrandbits(64), 5_073_395_517_033_431_291);
        assert_eq!(r.getrandbits(1), 0);
        assert_eq!(r.getrandbits(33), 958_682_846);
        assert_eq!(r.getrandbits(7), 94);
    }

    #[test]
    fn seeds_use_the_words_of_the_integer() {
        // random.seed(0), random.seed(2**32 + 5), random.seed(12345678901234567890), then getrandbits(..).
        assert_eq!(PyRandom::seed(0).getrandbits(32), 3_626_764_237);
        assert_eq!(PyRandom::seed((1 << 32) + 5).getrandbits(32), 675_479_763);
        assert_eq!(PyRandom::seed(12_345_678_901_234_567_890).getrandbits(64), 15_871_761_815_878_999_594);
    }

    #[test]
    fn randbelow_matches_cpython() {
        // r = random.Random(7); [r._randbelow(n) for n in (1, 2, 3, 10, 1000, 2**40 + 3)]
        let mut r = PyRandom::seed(7);
        let got: Vec<u64> = [1, 2, 3, 10, 1000, (1 << 40) + 3].iter().map(|&n| r.randbelow(n)).collect();
        assert_eq!(got, [0, 0, 1, 0, 74, 803_563_169_809]);
    }

    #[test]
    fn shuffle_of_5000_matches_cpython() {
        // random.seed(42); x = list(range(5000)); random.shuffle(x);
        // x[:5], x[2500], x[-3:], sum(i * v for i, v in enumerate(x))
        let mut x: Vec<u64> = (0..5000).collect();
        PyRandom::seed(42).shuffle(&mut x);
        assert_eq!(x[..5], [1383, 1881, 4901, 1524, 4654]);
        assert_eq!(x[2500], 816);
        assert_eq!(x[4997..], [2253, 204, 912]);
        let weighted: u64 = x.iter().enumerate().map(|(i, v)| i as u64 * v).sum();
        assert_eq!(weighted, 31_286_367_899);
    }
}
