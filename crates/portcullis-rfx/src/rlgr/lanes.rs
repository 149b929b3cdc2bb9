//! RLGR decoding of eight components at once, with AVX-512: the same
//! coefficients and the same errors as [`super::decode`] for each.
//!
//! One component is a serial chain (each symbol starts where the last one
//! ended), so a single decoder waits on that chain and on branches it
//! cannot predict (which mode the next symbol is in). Here each of eight
//! 64-bit lanes decodes its own component: a step reads one symbol in every
//! lane (a gather of eight 64-bit windows), decodes it both ways (Golomb-Rice
//! mode and run-length mode, as the fast path of [`super::fast_symbols`]
//! does), keeps the one the lane's mode asks for, and writes its
//! coefficients (a scatter). No branch depends on the data, and eight
//! chains run side by side.
//!
//! A lane whose symbol the fast path does not take (a prefix too long for
//! its window, a damaged stream) hands that one symbol to the scalar slow
//! path ([`super::slow_symbol`]), which reads as IronRDP does. A lane whose
//! component ends takes the next one, longest first, so that the lanes run
//! out of work together. When only a few lanes are left, they finish on the
//! scalar decoder, which is faster for one chain.
//!
//! The components are copied into one buffer, each followed by zero bytes,
//! so that a window can always be loaded. A symbol that reads past its
//! component's end in that window is where IronRDP's decoding stops (its bit
//! reader runs out there), so the lane stops too and writes nothing.

use std::arch::x86_64::{
    __m512i, _mm_set_epi8, _mm512_add_epi64, _mm512_and_si512, _mm512_broadcast_i32x4,
    _mm512_cmpeq_epi64_mask, _mm512_cmpgt_epu64_mask, _mm512_cmplt_epu64_mask,
    _mm512_cvtepi64_epi32, _mm512_i64gather_epi64, _mm512_loadu_si512, _mm512_lzcnt_epi64,
    _mm512_mask_blend_epi64, _mm512_mask_i64scatter_epi32, _mm512_maskz_mov_epi64,
    _mm512_min_epu64, _mm512_or_si512, _mm512_set1_epi64, _mm512_shuffle_epi8, _mm512_slli_epi64,
    _mm512_sllv_epi64, _mm512_srli_epi64, _mm512_srlv_epi64, _mm512_storeu_si512, _mm512_sub_epi64,
    _mm512_ternarylogic_epi64, _mm512_test_epi64_mask, _mm512_testn_epi64_mask, _mm512_xor_si512,
};

use ironrdp_graphics::rlgr::RlgrError;

use super::{
    DN_GR, DQ_GR, KP_MAX, LS_GR, MAX_FAST_ONES, MAX_FAST_ZEROS, State, UP_GR, UQ_GR, WINDOW_BITS,
    decode_from, slow_symbol,
};

/// Lanes: components decoded side by side, one in each 64-bit lane of a
/// vector. (Two vectors' lanes stepped side by side were no faster: a step
/// is bound by the vector units' throughput, not by its chain.)
const LANES: usize = 8;
/// Coefficients of a component.
pub(crate) const COMPONENT_LEN: usize = 4096;
/// Where each component's coefficients start in the output: eight more
/// than it holds, since a step writes two coefficients (the second zero
/// when it writes one), and one component's last must not touch the next
/// one's first.
pub(crate) const STRIDE: usize = COMPONENT_LEN + 8;
/// Zero bytes after each component's data: a window is 8 bytes.
const PADDING: usize = 8;
/// When the components have all been handed out and this many lanes or
/// fewer are still decoding, they finish on the scalar decoder.
const FEW_LANES: u32 = 2;

/// Buffers kept between calls: the components' data one after another
/// with [`PADDING`], where each starts, and the order they are handed out in.
#[derive(Clone, Default)]
pub(crate) struct Scratch {
    packed: Vec<u8>,
    starts: Vec<usize>,
    order: Vec<usize>,
}

/// Whether this processor can run [`decode_all`].
pub(crate) fn available() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
        && std::arch::is_x86_feature_detected!("avx512bw")
        && std::arch::is_x86_feature_detected!("avx512cd")
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("bmi1")
        && std::arch::is_x86_feature_detected!("bmi2")
        && std::arch::is_x86_feature_detected!("lzcnt")
}

/// Decodes each of `components` into its [`STRIDE`] of `output` (component
/// `i` at `i * STRIDE`, [`COMPONENT_LEN`] coefficients, zero where the data
/// does not fill them); the outcome of each, as [`super::decode`]'s, in
/// order.
///
/// # Safety
/// Only on a processor where [`available`] is true.
#[target_feature(enable = "avx512f,avx512bw,avx512cd,avx2,bmi1,bmi2,lzcnt")]
pub(crate) fn decode_all(
    rlgr3: bool,
    components: &[&[u8]],
    output: &mut [i16],
    scratch: &mut Scratch,
) -> Vec<Result<(), RlgrError>> {
    assert!(output.len() >= components.len() * STRIDE);
    output[..components.len() * STRIDE].fill(0);
    let mut outcomes: Vec<_> = components.iter().map(|_| Ok(())).collect();
    scratch.packed.clear();
    scratch.starts.clear();
    for data in components {
        scratch.starts.push(scratch.packed.len());
        scratch.packed.extend_from_slice(data);
        scratch.packed.extend_from_slice(&[0; PADDING]);
    }
    scratch.order.clear();
    scratch.order.extend(0..components.len());
    scratch
        .order
        .sort_by_key(|&i| std::cmp::Reverse(components[i].len()));
    let mut run = Run {
        rlgr3,
        components,
        starts: &scratch.starts,
        order: &scratch.order,
        packed: &scratch.packed,
        output,
        outcomes: &mut outcomes,
        next: 0,
        lanes: Lanes::idle(),
        component: [usize::MAX; LANES],
    };
    if rlgr3 {
        run.decode::<true>();
    } else {
        run.decode::<false>();
    }
    outcomes
}

/// The lanes' states, one value per lane, as the vector steps hold them:
/// bit positions in `packed` and coefficient indices in the output.
#[derive(Clone, Copy)]
struct Lanes {
    position: [u64; LANES],
    end: [u64; LANES],
    kp: [u64; LANES],
    krp: [u64; LANES],
    at: [u64; LANES],
    at_end: [u64; LANES],
}

impl Lanes {
    fn idle() -> Self {
        Self {
            position: [0; LANES],
            end: [0; LANES],
            kp: [u64::from(State::START.kp); LANES],
            krp: [u64::from(State::START.krp); LANES],
            at: [0; LANES],
            at_end: [0; LANES],
        }
    }
}

/// The lanes in vectors, as a step takes and leaves them.
#[derive(Clone, Copy)]
struct Vectors {
    position: __m512i,
    end: __m512i,
    kp: __m512i,
    krp: __m512i,
    at: __m512i,
    at_end: __m512i,
}

impl Vectors {
    #[target_feature(enable = "avx512f")]
    fn load(lanes: &Lanes) -> Self {
        Self {
            position: load(&lanes.position),
            end: load(&lanes.end),
            kp: load(&lanes.kp),
            krp: load(&lanes.krp),
            at: load(&lanes.at),
            at_end: load(&lanes.at_end),
        }
    }

    /// Back into `lanes`: what a step changes.
    #[target_feature(enable = "avx512f")]
    fn store(&self, lanes: &mut Lanes) {
        store(&mut lanes.position, self.position);
        store(&mut lanes.kp, self.kp);
        store(&mut lanes.krp, self.krp);
        store(&mut lanes.at, self.at);
    }
}

/// What a step needs besides the lanes: the input, and where offsets are
/// clamped.
struct Frame<'a> {
    packed: &'a [u8],
    /// The last window that can be read: offsets are clamped to it, so that
    /// no lane's state, whatever it holds, reads outside `packed`.
    last_window: __m512i,
    /// The last pair of coefficients that can be written: indices are
    /// clamped to it, so that no lane writes outside the output.
    last_pair: __m512i,
    /// Reverses the bytes of each 64-bit lane.
    reverse: __m512i,
}

/// One call's work: the components, where they are, and the lanes.
struct Run<'a> {
    rlgr3: bool,
    components: &'a [&'a [u8]],
    starts: &'a [usize],
    packed: &'a [u8],
    output: &'a mut [i16],
    outcomes: &'a mut [Result<(), RlgrError>],
    /// The components, longest first, and how many of them are handed out.
    order: &'a [usize],
    next: usize,
    lanes: Lanes,
    /// The component each lane decodes (`usize::MAX`: none).
    component: [usize; LANES],
}

impl Run<'_> {
    #[target_feature(enable = "avx512f,avx512bw,avx512cd,avx2,bmi1,bmi2,lzcnt")]
    fn decode<const RLGR3: bool>(&mut self) {
        for lane in 0..LANES {
            self.start_next(lane);
        }
        loop {
            let active = self.active();
            if active == 0 {
                return;
            }
            if self.next == self.components.len() && active.count_ones() <= FEW_LANES {
                for lane in 0..LANES {
                    if active & (1 << lane) != 0 {
                        self.finish_scalar(lane);
                    }
                }
                return;
            }
            let attention = self.steps::<RLGR3>(active);
            for lane in 0..LANES {
                if attention & (1 << lane) != 0 {
                    self.attend(lane);
                }
            }
        }
    }

    /// The lanes decoding a component, a bit each.
    fn active(&self) -> u8 {
        (0..LANES).fold(0, |mask, lane| {
            mask | (u8::from(self.component[lane] != usize::MAX) << lane)
        })
    }

    /// Gives `lane` the next component with data (an empty one is
    /// IronRDP's error at once), or leaves it idle.
    fn start_next(&mut self, lane: usize) {
        self.component[lane] = usize::MAX;
        while self.next < self.components.len() {
            let index = self.order[self.next];
            self.next += 1;
            let len = self.components[index].len();
            if len == 0 {
                self.outcomes[index] = Err(RlgrError::EmptyTile);
                continue;
            }
            let start = self.starts[index] as u64 * 8;
            let at = (index * STRIDE) as u64;
            self.component[lane] = index;
            let lanes = &mut self.lanes;
            lanes.position[lane] = start;
            lanes.end[lane] = start + len as u64 * 8;
            lanes.kp[lane] = u64::from(State::START.kp);
            lanes.krp[lane] = u64::from(State::START.krp);
            lanes.at[lane] = at;
            lanes.at_end[lane] = at + COMPONENT_LEN as u64;
            return;
        }
        // An idle lane reads the first window and writes nowhere.
        self.lanes.position[lane] = 0;
        self.lanes.end[lane] = 0;
    }

    /// `lane`'s component, and its state as the scalar decoder holds it.
    fn scalar_state(&self, lane: usize) -> (usize, State) {
        let index = self.component[lane];
        let lanes = &self.lanes;
        let start = self.starts[index] as u64 * 8;
        let at = (index * STRIDE) as u64;
        let state = State {
            position: (lanes.position[lane] - start) as usize,
            kp: lanes.kp[lane] as u32,
            krp: lanes.krp[lane] as u32,
            at: (lanes.at[lane] - at) as usize,
        };
        (index, state)
    }

    /// A lane the vector step stopped: its component has ended (in which
    /// case the lane takes the next), or its next symbol needs the slow path.
    fn attend(&mut self, lane: usize) {
        let (index, mut state) = self.scalar_state(lane);
        let data = self.components[index];
        let output = &mut self.output[index * STRIDE..][..COMPONENT_LEN];
        if state.position >= data.len() * 8 || state.at >= COMPONENT_LEN {
            self.start_next(lane);
            return;
        }
        match slow_symbol(self.rlgr3, data, output, &mut state) {
            Ok(false) if state.position < data.len() * 8 && state.at < COMPONENT_LEN => {
                let start = self.starts[index] as u64 * 8;
                let lanes = &mut self.lanes;
                lanes.position[lane] = start + state.position as u64;
                lanes.kp[lane] = u64::from(state.kp);
                lanes.krp[lane] = u64::from(state.krp);
                lanes.at[lane] = (index * STRIDE + state.at) as u64;
            }
            Ok(_) => self.start_next(lane),
            Err(e) => {
                self.outcomes[index] = Err(e);
                self.start_next(lane);
            }
        }
    }

    /// Decodes the rest of `lane`'s component with the scalar decoder.
    fn finish_scalar(&mut self, lane: usize) {
        let (index, state) = self.scalar_state(lane);
        let output = &mut self.output[index * STRIDE..][..COMPONENT_LEN];
        self.outcomes[index] = decode_from(self.rlgr3, self.components[index], output, state);
        self.component[lane] = usize::MAX;
    }

    /// Vector steps over the `active` lanes until one of them needs
    /// attention (its component ended, or its symbol is not for the fast
    /// path); which lanes need it.
    #[target_feature(enable = "avx512f,avx512bw,avx512cd,avx2,bmi1,bmi2,lzcnt")]
    fn steps<const RLGR3: bool>(&mut self, active: u8) -> u8 {
        let frame = Frame {
            packed: self.packed,
            last_window: splat(self.packed.len() as u64 - 8),
            last_pair: splat(self.output.len() as u64 - 2),
            reverse: _mm512_broadcast_i32x4(_mm_set_epi8(
                8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7,
            )),
        };
        let mut lanes = Vectors::load(&self.lanes);
        loop {
            let attention = step::<RLGR3>(&mut lanes, active, &frame, self.output);
            if attention != 0 {
                lanes.store(&mut self.lanes);
                return attention;
            }
        }
    }
}

/// One symbol in each `active` lane that the fast path takes, written to
/// `output`; the lanes that need attention (their component ended, or
/// their symbol is not for the fast path: such a lane is left as it was).
#[target_feature(enable = "avx512f,avx512bw,avx512cd,avx2,bmi1,bmi2,lzcnt")]
#[inline]
fn step<const RLGR3: bool>(
    lanes: &mut Vectors,
    active: u8,
    frame: &Frame<'_>,
    output: &mut [i16],
) -> u8 {
    let Vectors {
        position,
        end,
        kp,
        krp,
        at,
        at_end,
    } = *lanes;
    let byte = _mm512_min_epu64(_mm512_srli_epi64::<3>(position), frame.last_window);
    // SAFETY: each offset is at most `packed.len() - 8` (clamped above), so
    // every 8-byte load lies inside `packed`.
    #[allow(unsafe_code)]
    let window = unsafe { _mm512_i64gather_epi64::<1>(byte, frame.packed.as_ptr().cast()) };
    let window = _mm512_sllv_epi64(
        _mm512_shuffle_epi8(window, frame.reverse),
        _mm512_and_si512(position, splat(7)),
    );
    let kr = _mm512_srli_epi64::<{ LS_GR }>(krp);
    let golomb = _mm512_cmplt_epu64_mask(kp, splat(1 << LS_GR));

    // Both modes end in a Golomb-Rice code (ones, a zero, kr bits), read
    // once for both. In run-length mode it comes after zeros (each a run of
    // 2^k), a one, k bits more of run and a sign.
    let zeros = _mm512_lzcnt_epi64(window);
    let kp_after = _mm512_min_epu64(
        _mm512_add_epi64(kp, _mm512_slli_epi64::<2>(zeros)),
        splat(u64::from(KP_MAX)),
    );
    let k = _mm512_srli_epi64::<{ LS_GR }>(kp_after);
    // `x << (n + 1)` as `(x << 1) << n`: a shift by 64 or more is 0 either way.
    let rest = _mm512_sllv_epi64(_mm512_slli_epi64::<1>(window), zeros);
    let run = _mm512_add_epi64(run_of_zeros(kp, zeros), top(rest, k));
    let rest = _mm512_sllv_epi64(rest, k);
    let negative = _mm512_srli_epi64::<63>(rest);
    let code_start = _mm512_mask_blend_epi64(golomb, _mm512_slli_epi64::<1>(rest), window);
    let ones = _mm512_lzcnt_epi64(not(code_start));
    let rest = _mm512_sllv_epi64(_mm512_slli_epi64::<1>(code_start), ones);
    let code = _mm512_add_epi64(_mm512_sllv_epi64(ones, kr), top(rest, kr));
    let rest = _mm512_sllv_epi64(rest, kr);
    let code_length = _mm512_add_epi64(_mm512_add_epi64(ones, kr), splat(1));
    let krp_after = next_krp(krp, ones);
    let ones_fail = _mm512_cmpgt_epu64_mask(ones, splat(u64::from(MAX_FAST_ONES)));

    // Golomb-Rice mode: the code is the value (RLGR1), or the sum of two
    // values, the first in as many bits as the sum has (RLGR3).
    let (g_length, g_kp, g_pair, g_step);
    let mut g_fail = ones_fail;
    if RLGR3 {
        // `top(rest, 64 - lz)`, the first value's bits, is `rest >> lz`.
        let lz = _mm512_lzcnt_epi64(code);
        let first = _mm512_srlv_epi64(rest, lz);
        let second = _mm512_sub_epi64(code, first);
        g_fail |= _mm512_cmpgt_epu64_mask(first, code);
        g_length = _mm512_sub_epi64(_mm512_add_epi64(code_length, splat(64)), lz);
        let zeros = _mm512_testn_epi64_mask(first, first) & _mm512_testn_epi64_mask(second, second);
        let both = _mm512_test_epi64_mask(first, first) & _mm512_test_epi64_mask(second, second);
        let up = _mm512_min_epu64(
            _mm512_add_epi64(kp, splat(u64::from(2 * UQ_GR))),
            splat(u64::from(KP_MAX)),
        );
        let down = saturating_sub(kp, u64::from(2 * DQ_GR));
        g_kp = _mm512_mask_blend_epi64(zeros, _mm512_mask_blend_epi64(both, kp, down), up);
        g_pair = _mm512_or_si512(
            coefficient(first),
            _mm512_slli_epi64::<16>(coefficient(second)),
        );
        // The last coefficient may take the first value alone: IronRDP's
        // loop then ends, and the second (which fits, so has no error) goes
        // into the padding.
        g_step = _mm512_min_epu64(splat(2), _mm512_sub_epi64(at_end, at));
    } else {
        g_length = code_length;
        let nothing = _mm512_testn_epi64_mask(code, code);
        let up = _mm512_min_epu64(
            _mm512_add_epi64(kp, splat(u64::from(UQ_GR))),
            splat(u64::from(KP_MAX)),
        );
        g_kp = _mm512_mask_blend_epi64(nothing, saturating_sub(kp, u64::from(DQ_GR)), up);
        g_pair = coefficient(code);
        g_step = splat(1);
    }

    // Run-length mode: the run, then the code as a magnitude less one.
    let r_length = _mm512_add_epi64(
        _mm512_add_epi64(zeros, k),
        _mm512_add_epi64(code_length, splat(2)),
    );
    let r_fail = ones_fail
        | _mm512_cmpgt_epu64_mask(zeros, splat(u64::from(MAX_FAST_ZEROS)))
        | _mm512_cmpgt_epu64_mask(r_length, splat(u64::from(WINDOW_BITS)));
    let r_kp = saturating_sub(kp_after, u64::from(DN_GR));
    // The zeros are there already; a run past the end ends the component
    // without its value.
    let r_at = _mm512_min_epu64(_mm512_add_epi64(at, run), at_end);
    let r_writes = _mm512_cmplt_epu64_mask(r_at, at_end);
    // `code + 1`, or negated (`!code`), as the 16 bits of an `i16`.
    let r_value = _mm512_and_si512(
        _mm512_xor_si512(
            _mm512_add_epi64(_mm512_sub_epi64(code, negative), splat(1)),
            _mm512_sub_epi64(zero(), negative),
        ),
        splat(0xffff),
    );

    let fail = active & ((golomb & g_fail) | (!golomb & r_fail));
    let length = _mm512_mask_blend_epi64(golomb, r_length, g_length);
    let after = _mm512_add_epi64(position, length);
    // A symbol past the end: IronRDP's reader runs out in it, and decoding
    // stops there.
    let past = active & !fail & _mm512_cmpgt_epu64_mask(after, end);
    let taken = active & !fail & !past;
    let writes = taken & (golomb | r_writes);
    let target = _mm512_mask_blend_epi64(golomb, r_at, at);
    let pair = _mm512_mask_blend_epi64(golomb, r_value, g_pair);
    let at_after = _mm512_mask_blend_epi64(
        golomb,
        _mm512_add_epi64(r_at, _mm512_maskz_mov_epi64(r_writes, splat(1))),
        _mm512_add_epi64(at, g_step),
    );
    // A lane past its end is at its end: its component is done.
    let position =
        _mm512_mask_blend_epi64(past, _mm512_mask_blend_epi64(taken, position, after), end);
    let kp = _mm512_mask_blend_epi64(taken, kp, _mm512_mask_blend_epi64(golomb, r_kp, g_kp));
    let krp = _mm512_mask_blend_epi64(taken, krp, krp_after);
    let at = _mm512_mask_blend_epi64(taken, at, at_after);
    *lanes = Vectors {
        position,
        kp,
        krp,
        at,
        ..*lanes
    };

    let target = _mm512_min_epu64(target, frame.last_pair);
    // SAFETY: each index is at most `output.len() - 2` (clamped above), so
    // every 4-byte store (two coefficients) lies inside `output`.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_mask_i64scatter_epi32::<2>(
            output.as_mut_ptr().cast(),
            writes,
            target,
            _mm512_cvtepi64_epi32(pair),
        );
    }

    let going = _mm512_cmpgt_epu64_mask(end, position) & _mm512_cmpgt_epu64_mask(at_end, at);
    fail | past | (taken & !going)
}

/// The zeros a run-length mode prefix of `zeros` zero bits stands for, read
/// at parameter `kp`: each `2^(kp >> 3)`, `kp` moving up by 4 after each to
/// at most 80: what `super::RUNS` holds, computed as the scalar
/// `run_of_zeros` there does (which the tests check against the table).
#[target_feature(enable = "avx512f")]
#[inline]
fn run_of_zeros(kp: __m512i, zeros: __m512i) -> __m512i {
    let q = _mm512_srli_epi64::<2>(kp);
    let capped = _mm512_add_epi64(q, zeros);
    let d = _mm512_min_epu64(capped, splat(u64::from(KP_MAX / UP_GR)));
    let sum_to = |m: __m512i| {
        _mm512_sllv_epi64(
            _mm512_add_epi64(splat(2), _mm512_and_si512(m, splat(1))),
            _mm512_srli_epi64::<1>(m),
        )
    };
    _mm512_add_epi64(
        _mm512_sub_epi64(sum_to(d), sum_to(q)),
        _mm512_slli_epi64::<{ KP_MAX >> LS_GR }>(_mm512_sub_epi64(capped, d)),
    )
}

#[target_feature(enable = "avx512f")]
#[inline]
fn splat(value: u64) -> __m512i {
    _mm512_set1_epi64(value as i64)
}

#[target_feature(enable = "avx512f")]
#[inline]
fn zero() -> __m512i {
    _mm512_set1_epi64(0)
}

#[target_feature(enable = "avx512f")]
#[inline]
fn load(values: &[u64; LANES]) -> __m512i {
    // SAFETY: `values` is 64 readable bytes, what an unaligned load reads.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_loadu_si512(values.as_ptr().cast())
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
fn store(values: &mut [u64; LANES], vector: __m512i) {
    // SAFETY: `values` is 64 writable bytes, what an unaligned store writes.
    #[allow(unsafe_code)]
    unsafe {
        _mm512_storeu_si512(values.as_mut_ptr().cast(), vector);
    }
}

/// Every bit flipped.
#[target_feature(enable = "avx512f")]
#[inline]
fn not(value: __m512i) -> __m512i {
    _mm512_ternarylogic_epi64::<0x55>(value, value, value)
}

/// The top `n` bits of each word (`n` in 0..=32; 0 gives 0: a shift by 64
/// gives 0 in AVX-512).
#[target_feature(enable = "avx512f")]
#[inline]
fn top(word: __m512i, n: __m512i) -> __m512i {
    _mm512_srlv_epi64(word, _mm512_sub_epi64(splat(64), n))
}

/// `value - by`, or 0 below it.
#[target_feature(enable = "avx512f")]
#[inline]
fn saturating_sub(value: __m512i, by: u64) -> __m512i {
    _mm512_sub_epi64(value, _mm512_min_epu64(value, splat(by)))
}

/// The GR parameter after a code whose unary prefix had `ones` ones, as
/// [`super::next_krp`].
#[target_feature(enable = "avx512f")]
#[inline]
fn next_krp(krp: __m512i, ones: __m512i) -> __m512i {
    let down = saturating_sub(krp, 2);
    let up = _mm512_min_epu64(_mm512_add_epi64(krp, ones), splat(u64::from(KP_MAX)));
    let none = _mm512_cmpeq_epi64_mask(ones, zero());
    let several = _mm512_cmpgt_epu64_mask(ones, splat(1));
    _mm512_mask_blend_epi64(none, _mm512_mask_blend_epi64(several, krp, up), down)
}

/// A RLGR3 value's (or a RLGR1 code's) coefficient, as [`super::coefficient`]:
/// even values are positive (`v / 2`), odd ones negative (`-(v + 1) / 2`,
/// which is `!(v / 2)`); the 16 bits of an `i16`.
#[target_feature(enable = "avx512f")]
#[inline]
fn coefficient(value: __m512i) -> __m512i {
    let odd = _mm512_and_si512(value, splat(1));
    let value = _mm512_xor_si512(_mm512_srli_epi64::<1>(value), _mm512_sub_epi64(zero(), odd));
    _mm512_and_si512(value, splat(0xffff))
}

#[cfg(test)]
mod tests {
    use ironrdp_graphics::rlgr as reference;
    use ironrdp_pdu::codecs::rfx::EntropyAlgorithm;

    use super::super::tests::{bursts, coded_plane, damage};
    use super::*;
    use crate::sample::{Noise, encode_picture, text_page};

    /// Whether the lanes can run here; says so loudly when they cannot (CI's
    /// machine has AVX-512, so there it must).
    fn runnable() -> bool {
        let available = available();
        if !available {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI's machine has AVX-512: the lanes must be tested there"
            );
            eprintln!(
                "NOT TESTED: this processor lacks AVX-512, so the RLGR lanes do not run here"
            );
        }
        available
    }

    /// The lanes on `components`, each against IronRDP's decoder: the same
    /// coefficients, or the same error.
    fn agree(mode: EntropyAlgorithm, components: &[Vec<u8>], scratch: &mut Scratch) {
        let slices: Vec<&[u8]> = components.iter().map(Vec::as_slice).collect();
        let mut output = vec![7i16; components.len() * STRIDE];
        let rlgr3 = matches!(mode, EntropyAlgorithm::Rlgr3);
        // SAFETY: `runnable` found AVX-512 on this processor.
        #[allow(unsafe_code)]
        let outcomes = unsafe { decode_all(rlgr3, &slices, &mut output, scratch) };
        assert_eq!(outcomes.len(), components.len());
        for (i, (data, outcome)) in components.iter().zip(&outcomes).enumerate() {
            let mut theirs = vec![0i16; COMPONENT_LEN];
            let expected = reference::decode(mode, data, &mut theirs).map_err(|e| e.to_string());
            let got = outcome.as_ref().map(|_| ()).map_err(|e| e.to_string());
            assert_eq!(
                got,
                expected,
                "component {i} of {}, {mode:?}: {data:02x?}",
                components.len()
            );
            if got.is_ok() {
                assert!(
                    output[i * STRIDE..][..COMPONENT_LEN] == theirs[..],
                    "component {i} of {}, {mode:?}: {data:02x?}",
                    components.len()
                );
            }
        }
    }

    /// `rounds` batches from `batch` (given a noise seeded with `seed`, and
    /// RLGR1 every third round, RLGR3 otherwise), each decoded in lanes and
    /// checked against IronRDP; how many components, and how many of them
    /// IronRDP refuses.
    fn check_batches(
        seed: u64,
        rounds: usize,
        mut batch: impl FnMut(&mut Noise, EntropyAlgorithm) -> Vec<Vec<u8>>,
    ) -> (usize, usize) {
        let mut noise = Noise(seed);
        let mut scratch = Scratch::default();
        let (mut components_seen, mut errors) = (0, 0);
        for round in 0..rounds {
            let mode = if round % 3 == 0 {
                EntropyAlgorithm::Rlgr1
            } else {
                EntropyAlgorithm::Rlgr3
            };
            let components = batch(&mut noise, mode);
            components_seen += components.len();
            errors += components
                .iter()
                .filter(|data| reference::decode(mode, data, &mut [0; COMPONENT_LEN]).is_err())
                .count();
            agree(mode, &components, &mut scratch);
        }
        (components_seen, errors)
    }

    #[test]
    fn batches_of_coded_damaged_and_empty_components_decode_as_ironrdp_decodes_them() {
        if !runnable() {
            return;
        }
        let (components, errors) = check_batches(0x5eed_1a4e_5eed_1a4e, 300, |noise, mode| {
            // From fewer components than lanes to many rounds of them.
            let count = [1, 3, 8, 9, 24, 40][noise.below(6)];
            (0..count)
                .map(|_| match noise.below(11) {
                    0 => Vec::new(),
                    1 => (0..noise.below(20) + 1).map(|_| noise.byte()).collect(),
                    10 => bursts(noise, 200),
                    2 | 3 => {
                        let (mut data, _) = coded_plane(noise, mode);
                        damage(noise, &mut data);
                        data
                    }
                    _ => coded_plane(noise, mode).0,
                })
                .collect()
        });
        assert!(components > 3000 && errors > 100, "{components} {errors}");
    }

    #[test]
    fn long_prefixes_and_symbols_longer_than_a_window_decode_as_ironrdp_decodes_them() {
        if !runnable() {
            return;
        }
        let (components, _) = check_batches(0x10_0000_0001, 200, |noise, _| {
            (0..24).map(|_| bursts(noise, 300)).collect()
        });
        assert_eq!(components, 200 * 24);
    }

    #[test]
    fn a_full_hd_text_frame_decodes_as_ironrdp_decodes_it() {
        if !runnable() {
            return;
        }
        for mode in [EntropyAlgorithm::Rlgr3, EntropyAlgorithm::Rlgr1] {
            let page = text_page(1920, 1080, 0);
            let components: Vec<Vec<u8>> = encode_picture(&page, 1920, 1080, mode)
                .into_iter()
                .flat_map(|(_, tile)| tile)
                .collect();
            agree(mode, &components, &mut Scratch::default());
        }
    }
}
