//! Dequantization and the inverse DWT of a component: IronRDP's arithmetic
//! (`ironrdp_graphics::{quantization, dwt}::decode`, 0.11), written as plain
//! loops over whole rows, so the compiler vectorizes them for the vector unit
//! the decoder is compiled for (see `decode_run` in the crate root). IronRDP
//! fixes its own to 8 lanes of 16 bits.
//!
//! Every operation is the same wrapping `i16` arithmetic in the same order,
//! so the output is bit for bit IronRDP's for any input; the tests compare
//! them on random planes, extreme values included.

use ironrdp_pdu::codecs::rfx::Quant;

use crate::TILE_PIXELS;

/// Shifts each sub-band left by its quantization factor less one (when
/// positive), as `ironrdp_graphics::quantization::decode` does.
#[inline(always)]
pub fn dequantize(plane: &mut [i16], quant: &Quant) {
    let plane = &mut plane[..TILE_PIXELS];
    // HL1, LH1, HH1 (1024 each), HL2, LH2, HH2 (256), HL3, LH3, HH3, LL3 (64).
    let bands = [
        (0, 1024, quant.hl1),
        (1024, 1024, quant.lh1),
        (2048, 1024, quant.hh1),
        (3072, 256, quant.hl2),
        (3328, 256, quant.lh2),
        (3584, 256, quant.hh2),
        (3840, 64, quant.hl3),
        (3904, 64, quant.lh3),
        (3968, 64, quant.hh3),
        (4032, 64, quant.ll3),
    ];
    for (start, len, factor) in bands {
        let shift = i32::from(factor) - 1;
        if shift > 0 {
            for value in &mut plane[start..start + len] {
                *value = value.wrapping_shl(shift.unsigned_abs());
            }
        }
    }
}

/// The three levels of the inverse DWT, in place; `temp` holds 4096 values.
#[inline(always)]
pub fn inverse(plane: &mut [i16], temp: &mut [i16]) {
    level::<8>(&mut plane[3840..TILE_PIXELS], temp);
    level::<16>(&mut plane[3072..TILE_PIXELS], temp);
    level::<32>(&mut plane[..TILE_PIXELS], temp);
}

/// `(a + b + 1) >> 1` without overflow, as IronRDP computes it.
#[inline(always)]
fn ceil_avg(a: i16, b: i16) -> i16 {
    (a | b).wrapping_sub((a ^ b) >> 1)
}

/// `(a + b) >> 1` without overflow, as IronRDP computes it.
#[inline(always)]
fn floor_avg(a: i16, b: i16) -> i16 {
    (a & b).wrapping_add((a ^ b) >> 1)
}

/// One level: sub-bands HL, LH, HH, LL of `W`×`W` (in that order in `band`)
/// to a `2W`×`2W` block at the start of `band`.
#[inline(always)]
fn level<const W: usize>(band: &mut [i16], temp: &mut [i16]) {
    let area = W * W;
    // Horizontal: each row of LL with HL, and of LH with HH, to rows of
    // 2W in `low` and `high`.
    {
        let (hl, rest) = band.split_at(area);
        let (lh, rest) = rest.split_at(area);
        let (hh, ll) = rest.split_at(area);
        let (low, high) = temp[..4 * area].split_at_mut(2 * area);
        for row in 0..W {
            let at = row * W;
            horizontal::<W>(
                &ll[at..at + W],
                &hl[at..at + W],
                &mut low[2 * at..2 * at + 2 * W],
            );
            horizontal::<W>(
                &lh[at..at + W],
                &hh[at..at + W],
                &mut high[2 * at..2 * at + 2 * W],
            );
        }
    }
    vertical::<W>(&mut band[..4 * area], &temp[..4 * area]);
}

/// A row of low and high coefficients to `2W` samples, even and odd
/// interleaved:
///
/// - `even[n] = low[n] - ceil_avg(high[n - 1], high[n])`, `high[-1]` being
///   `high[0]`;
/// - `odd[n] = 2 high[n] + floor_avg(even[n], even[n + 1])`, the last
///   (with no right neighbour) `2 high[W - 1] + even[W - 1]`, which is the
///   same formula with `even[W]` taken as `even[W - 1]`.
///
/// Done 16 values at a time (8 for the 8-wide level), every neighbour read
/// from the input or shuffled within the 16, and `even[n + 1]` computed
/// again rather than read back from where `even` was just stored. Written
/// with one array of evens and reading it one place on, the compiler made
/// scalar code, and the processor waited on each load that straddled two
/// stores it had just made: this takes half the time on AVX2.
#[inline(always)]
fn horizontal<const W: usize>(low: &[i16], high: &[i16], out: &mut [i16]) {
    if W >= 16 {
        horizontal_by::<W, 16>(low, high, out);
    } else {
        horizontal_by::<W, 8>(low, high, out);
    }
}

/// [`horizontal`], `L` values at a time (`L` divides `W`, `L >= 2`).
#[inline(always)]
fn horizontal_by<const W: usize, const L: usize>(low: &[i16], high: &[i16], out: &mut [i16]) {
    let (low, high) = (&low[..W], &high[..W]);
    let out = &mut out[..2 * W];
    for start in (0..W).step_by(L) {
        let l = lanes::<L>(&low[start..]);
        let h = lanes::<L>(&high[start..]);
        let h_before: [i16; L] = if start == 0 {
            std::array::from_fn(|i| h[i.saturating_sub(1)])
        } else {
            lanes(&high[start - 1..])
        };
        // even[n + 1] from low[n + 1], high[n] and high[n + 1]; in the last
        // lane of the row, even[W - 1] itself.
        let (l_next, h_at, h_next): ([i16; L], [i16; L], [i16; L]) = if start + L < W {
            (lanes(&low[start + 1..]), h, lanes(&high[start + 1..]))
        } else {
            (
                std::array::from_fn(|i| l[(i + 1).min(L - 1)]),
                std::array::from_fn(|i| if i == L - 1 { h[L - 2] } else { h[i] }),
                std::array::from_fn(|i| h[(i + 1).min(L - 1)]),
            )
        };
        let pairs = &mut out[2 * start..2 * (start + L)];
        for i in 0..L {
            let even = l[i].wrapping_sub(ceil_avg(h_before[i], h[i]));
            let even_next = l_next[i].wrapping_sub(ceil_avg(h_at[i], h_next[i]));
            pairs[2 * i] = even;
            pairs[2 * i + 1] = (h[i] << 1).wrapping_add(floor_avg(even, even_next));
        }
    }
}

/// The first `L` values of `from`.
#[inline(always)]
fn lanes<const L: usize>(from: &[i16]) -> [i16; L] {
    from[..L].try_into().expect("L values")
}

/// Columns of `temp` (W rows of low, then W rows of high, each `2W` wide)
/// to `2W` rows of `band`.
#[inline(always)]
fn vertical<const W: usize>(band: &mut [i16], temp: &[i16]) {
    let width = 2 * W;
    let row = |i: usize| &temp[i * width..(i + 1) * width];
    // Row 0: low[0] - ceil_avg(high[0], high[0]) = low[0] - high[0].
    {
        let (low, high) = (row(0), row(W));
        for ((out, &l), &h) in band[..width].iter_mut().zip(low).zip(high) {
            *out = l.wrapping_sub(h);
        }
    }
    for k in 1..W {
        let (low, high, high_before) = (row(k), row(W + k), row(W + k - 1));
        // Rows 2k - 2 (done), 2k - 1 and 2k of the output.
        let (done, rest) = band.split_at_mut((2 * k - 1) * width);
        let above = &done[(2 * k - 2) * width..];
        let (odd, rest) = rest.split_at_mut(width);
        let even = &mut rest[..width];
        for c in 0..width {
            let e = low[c].wrapping_sub(ceil_avg(high_before[c], high[c]));
            even[c] = e;
            odd[c] = (high_before[c] << 1).wrapping_add(floor_avg(above[c], e));
        }
    }
    // The last row: 2 high[W - 1] + row 2W - 2.
    let high_last = row(2 * W - 1);
    let (done, last) = band.split_at_mut((2 * W - 1) * width);
    let above = &done[(2 * W - 2) * width..];
    for c in 0..width {
        last[c] = (high_last[c] << 1).wrapping_add(above[c]);
    }
}

#[cfg(test)]
mod tests {
    use ironrdp_graphics::{dwt as reference_dwt, quantization as reference_quantization};

    use super::*;
    use crate::sample::Noise;

    #[test]
    fn dequantization_and_inverse_dwt_are_ironrdps_bit_for_bit() {
        let mut noise = Noise(0xd00d_f00d);
        let mut temp = vec![0i16; TILE_PIXELS];
        let mut reference_temp = vec![0i16; TILE_PIXELS];
        for round in 0..400 {
            // Small coefficients as a codec makes, and any i16 at all (wrapping).
            let plane: Vec<i16> = (0..TILE_PIXELS)
                .map(|_| match round % 4 {
                    0 => (noise.below(64) as i16) - 32,
                    1 => (noise.below(4096) as i16) - 2048,
                    2 if noise.below(4) > 0 => 0,
                    _ => noise.next_u64() as i16,
                })
                .collect();
            let field = |noise: &mut Noise| noise.below(16) as u8;
            let quant = Quant {
                ll3: field(&mut noise),
                lh3: field(&mut noise),
                hl3: field(&mut noise),
                hh3: field(&mut noise),
                lh2: field(&mut noise),
                hl2: field(&mut noise),
                hh2: field(&mut noise),
                lh1: field(&mut noise),
                hl1: field(&mut noise),
                hh1: field(&mut noise),
            };
            let mut expected = plane.clone();
            reference_quantization::decode(&mut expected, &quant);
            let mut ours = plane.clone();
            dequantize(&mut ours, &quant);
            assert!(ours == expected, "dequantization, round {round}");
            reference_dwt::decode(&mut expected, &mut reference_temp);
            inverse(&mut ours, &mut temp);
            assert!(ours == expected, "inverse DWT, round {round}");
        }
    }
}
